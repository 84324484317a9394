"""The pure merge rules, without a database: clustering through shared keys, and which facts win."""

from __future__ import annotations

import datetime as dt
from typing import Any

from digest.merge import Ids, apply_record, cluster_records, merge_states, new_state
from digest.models import PaperRecord

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(days=1)


def test_records_sharing_a_key_are_one_cluster_but_conflicting_arxiv_ids_never_join() -> None:
    keys = [["arxiv:2401.00001", "title:mamba"], ["title:mamba"], ["arxiv:2401.00002", "title:mamba"]]
    clusters = cluster_records(keys, [Ids("2401.00001"), Ids(), Ids("2401.00002")], {}, {})
    groups = sorted(sorted(c.records) for c in clusters)
    assert groups == [[0, 1], [2]]
    owned = {k for c in clusters for k in c.keys}
    assert owned == {"arxiv:2401.00001", "arxiv:2401.00002", "title:mamba"}


def test_a_record_joins_the_stored_paper_that_owns_its_key() -> None:
    (cluster,) = cluster_records([["doi:10.1/x", "title:t"]], [Ids()], {"title:t": 7}, {7: Ids()})
    assert cluster.papers == [7] and cluster.records == [0] and cluster.keys == ["doi:10.1/x"]


def _record(**fields: Any) -> PaperRecord:
    return PaperRecord(source=fields.pop("source", "s"), title=fields.pop("title", "A title"), **fields)


def test_an_older_arxiv_version_never_overwrites_a_newer_title() -> None:
    state = new_state(_record(title="New title", arxiv_id="2401.00001v3"), "arxiv:2401.00001", T0)
    changed = apply_record(state, _record(title="Old title", arxiv_id="2401.00001v1", upvotes=5), T1)
    assert changed and state["title"] == "New title" and state["upvotes"] == 5
    assert state["first_seen_at"] == T0 and state["last_seen_at"] == T1


def test_merged_states_keep_the_oldest_id_and_first_sighting() -> None:
    a = {**new_state(_record(title="T", source="a"), "title:t", T1), "id": 2}
    b = {**new_state(_record(title="T v2", arxiv_id="2401.00001v2", source="b"), "arxiv:2401.00001", T0), "id": 9}
    merged = merge_states([a, b])
    assert merged["id"] == 9 and merged["first_seen_at"] == T0
    assert merged["key"] == "arxiv:2401.00001" and merged["title"] == "T v2"
    assert merged["sources"] == ["b", "a"]


def test_a_shared_title_never_overrides_a_different_doi_or_an_id_less_items_other_link() -> None:
    def groups(*ids: Ids) -> list[list[int]]:
        clusters = cluster_records([["title:correction"] for _ in ids], list(ids), {}, {})
        return sorted(sorted(c.records) for c in clusters)

    assert groups(Ids.of(None, "10.5555/a", None), Ids.of(None, "10.5555/B", None)) == [[0], [1]]
    assert groups(Ids.of(None, None, "https://j.org/1"), Ids.of(None, None, "https://j.org/2")) == [[0], [1]]
    assert groups(Ids.of(None, None, "https://j.org/1"), Ids.of(None, None, "http://www.J.org/1/")) == [[0, 1]]
    assert groups(Ids.of("2401.00001", None, "https://hf.co/p"), Ids.of(None, None, "https://j.org/1")) == [[0, 1]]
    preprint, article = Ids.of("2401.00001", "10.48550/arXiv.2401.00001", None), Ids.of(None, "10.5555/a", None)
    assert groups(preprint, article) == [[0, 1]], "an arXiv DOI only repeats the id: a preprint meets its article"
    (cluster,) = cluster_records(
        [["title:t"]], [Ids.of(None, "10.5555/b", None)], {"title:t": 7}, {7: Ids.of(None, "10.5555/a", None)}
    )
    assert cluster.papers == [] and cluster.keys == [], "the stored paper keeps its title key"
