"""The pure rules of identity merge: which records and stored papers are one paper, and which facts win.

No database here: `store` looks keys up and writes the outcome; these functions take and return plain
values (key lists, arXiv ids, paper states as dicts), so every rule can be tested on its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from digest.identity import key_strength, link_identity, normalize_doi, record_arxiv_id
from digest.models import PaperRecord

ARXIV_DOI_PREFIX = "10.48550/"


def url_rank(url: str | None) -> int:
    """How good a paper link is: a Hugging Face paper page > an arXiv abstract page > any other > none."""
    if not url:
        return 0
    if "/papers/" in url:
        return 3
    if "arxiv.org/abs/" in url:
        return 2
    return 1


def title_rank(arxiv_id: str | None, version: int | None) -> int:
    """How authoritative a title/abstract is: a versioned arXiv record > an unversioned id > no id at all."""
    if version:
        return 2 + version
    return 1 if arxiv_id else 0


def _compatible(a: str | None, b: str | None) -> bool:
    return a is None or b is None or a == b


@dataclass(frozen=True, slots=True)
class Ids:
    """What tells two papers apart even when their titles agree: the arXiv id, the DOI, and, for an item with
    neither, its link."""

    arxiv: str | None = None
    doi: str | None = None
    link: str | None = None

    @classmethod
    def of(cls, arxiv: str | None, doi: str | None, link: str | None) -> Ids:
        """Ids from stored or reported values: an arXiv DOI (10.48550/…) only repeats the arXiv id, and a link
        counts only in its identity form (`link_identity`)."""
        bare = normalize_doi(doi)
        return cls(
            arxiv, None if bare is None or bare.startswith(ARXIV_DOI_PREFIX) else bare, link and link_identity(link)
        )

    def joined(self, other: Ids) -> Ids:
        return Ids(self.arxiv or other.arxiv, self.doi or other.doi, self.link or other.link)

    def may_share_title(self, other: Ids) -> bool:
        """Whether a shared title may make these one paper: not when their DOIs differ, nor when neither has an
        arXiv id or a DOI and their links differ (journals publish many a "Correction" and "Editorial")."""
        if not _compatible(self.doi, other.doi):
            return False
        bare = not (self.arxiv or self.doi or other.arxiv or other.doi)
        return not bare or _compatible(self.link, other.link)


class _Union:
    """Union-find over record and paper nodes, each root remembering its cluster's ids."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.ids: dict[str, Ids] = {}

    def add(self, node: str, ids: Ids) -> None:
        if node not in self.parent:
            self.parent[node] = node
            self.ids[node] = ids

    def find(self, node: str) -> str:
        root = node
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[node] != root:
            self.parent[node], node = root, self.parent[node]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.ids[ra] = self.ids[ra].joined(self.ids[rb])

    def may_join(self, a: str, b: str, key: str) -> bool:
        """Whether key `key`, shared by nodes `a` and `b`, may make their groups one paper."""
        ia, ib = self.ids[self.find(a)], self.ids[self.find(b)]
        if not _compatible(ia.arxiv, ib.arxiv):
            return False
        return not key.startswith("title:") or ia.may_share_title(ib)


@dataclass(slots=True)
class Cluster:
    """Records (by index) and stored papers (by id) found to be one paper, and the new keys it owns."""

    records: list[int] = field(default_factory=list)
    papers: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)


def cluster_records(
    rec_keys: list[list[str]],
    rec_ids: list[Ids],
    owner: dict[str, int],
    paper_ids: dict[int, Ids],
) -> list[Cluster]:
    """Group records with each other and with stored papers through shared keys.

    A key joins two groups only if their arXiv ids do not conflict, so one paper never holds two arXiv ids;
    a title key also needs their DOIs (and, for items with neither id, their links) not to conflict.
    Records are visited in a canonical order (arXiv records first, by id) so a batch clusters the same way
    whatever order it arrives in. Each key belongs to the group that first claimed it (the stored owner, else
    the first record); `keys` lists the keys a cluster owns that the store does not know yet.
    """
    uf = _Union()
    node_of_key: dict[str, str] = {key: f"p{pid}" for key, pid in owner.items()}
    for pid, ids in paper_ids.items():
        uf.add(f"p{pid}", ids)
    order = sorted(range(len(rec_keys)), key=lambda i: (rec_ids[i].arxiv is None, rec_ids[i].arxiv or "", rec_keys[i]))
    for i in order:
        node = f"r{i}"
        uf.add(node, rec_ids[i])
        for key in rec_keys[i]:
            other = node_of_key.get(key)
            if other is None:
                node_of_key[key] = node
            elif uf.may_join(node, other, key):
                uf.union(other, node)
    clusters: dict[str, Cluster] = {}
    for i in range(len(rec_keys)):
        clusters.setdefault(uf.find(f"r{i}"), Cluster()).records.append(i)
    for pid in paper_ids:
        root = uf.find(f"p{pid}")
        if root in clusters:
            clusters[root].papers.append(pid)
    for key, node in node_of_key.items():
        if key not in owner:
            clusters[uf.find(node)].keys.append(key)
    return list(clusters.values())


def new_state(record: PaperRecord, key: str, now: dt.datetime) -> dict[str, Any]:
    arxiv = record_arxiv_id(record)
    return {
        "key": key,
        "arxiv_id": arxiv.id if arxiv else None,
        "arxiv_version": arxiv.version if arxiv else None,
        "doi": normalize_doi(record.doi),
        "title": record.title,
        "abstract": record.abstract,
        "authors": list(record.authors),
        "url": record.url,
        "thumbnail": record.thumbnail,
        "upvotes": record.upvotes or 0,
        "comments": record.comments or 0,
        "keywords": list(record.keywords),
        "ai_summary": record.ai_summary,
        "github_repo": record.github_repo,
        "project_page": record.project_page,
        "published_at": record.published_at,
        "featured_at": record.featured_at,
        "first_seen_at": now,
        "last_seen_at": now,
        "sources": [record.source],
    }


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    if a is None or b is None:
        return a or b
    return min(a, b)


def apply_record(state: dict[str, Any], record: PaperRecord, now: dt.datetime) -> bool:
    """Fold a re-sighting into a paper's state; True when a fact a reader sees changed.

    Title, abstract and authors come from the most authoritative record (highest arXiv version, then any
    arXiv id, then none), so an older version never overwrites a newer one, whatever the arrival order.
    """
    before = dict(state)
    arxiv = record_arxiv_id(record)
    rank = title_rank(arxiv.id if arxiv else None, arxiv.version if arxiv else None)
    if rank > title_rank(state["arxiv_id"], state["arxiv_version"]):
        state["title"] = record.title
        if record.abstract:
            state["abstract"] = record.abstract
        if record.authors:
            state["authors"] = list(record.authors)
    else:
        if not state["abstract"] and record.abstract:
            state["abstract"] = record.abstract
        if not state["authors"] and record.authors:
            state["authors"] = list(record.authors)
    if arxiv:
        state["arxiv_id"] = state["arxiv_id"] or arxiv.id
        if arxiv.version and arxiv.version > (state["arxiv_version"] or 0):
            state["arxiv_version"] = arxiv.version
    if not state["doi"]:
        state["doi"] = normalize_doi(record.doi)
    if record.upvotes is not None:
        state["upvotes"] = record.upvotes
    if record.comments is not None:
        state["comments"] = record.comments
    if record.keywords:
        state["keywords"] = list(record.keywords)
    for name in ("ai_summary", "github_repo", "project_page", "thumbnail"):
        value = getattr(record, name)
        if value:
            state[name] = value
    if url_rank(record.url) > url_rank(state["url"]):
        state["url"] = record.url
    state["published_at"] = _earliest(state["published_at"], record.published_at)
    state["featured_at"] = _earliest(state["featured_at"], record.featured_at)
    if record.source not in state["sources"]:
        state["sources"] = [*state["sources"], record.source]
    state["last_seen_at"] = max(state["last_seen_at"], now)
    return facts_changed(before, state)


def facts_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    return any(after[k] != before.get(k) for k in after if k != "last_seen_at")


def merge_states(states: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold several stored papers found to be one into the oldest (first seen first), keeping its id."""
    states = sorted(states, key=lambda s: (s["first_seen_at"], s["id"]))
    survivor = dict(states[0])
    best = max(states, key=lambda s: title_rank(s["arxiv_id"], s["arxiv_version"]))
    for name in ("title", "abstract", "authors"):
        survivor[name] = best[name] or survivor[name]
    survivor["key"] = min((s["key"] for s in states), key=key_strength)
    for other in states[1:]:
        for name, value in other.items():
            if name in {"id", "key", "first_seen_at", "title", "abstract", "authors"}:
                continue
            if name == "sources":
                survivor["sources"] = survivor["sources"] + [s for s in value if s not in survivor["sources"]]
            elif name == "last_seen_at":
                survivor[name] = max(survivor[name], value)
            elif name in {"upvotes", "comments", "arxiv_version"}:
                survivor[name] = max(survivor[name] or 0, value or 0) or survivor[name]
            elif name in {"published_at", "featured_at"}:
                survivor[name] = _earliest(survivor[name], value)
            elif name == "url":
                if url_rank(value) > url_rank(survivor[name]):
                    survivor[name] = value
            elif not survivor.get(name) and value:
                survivor[name] = value
    return survivor
