"""A generated rss.arxiv.org listing the size of a real day, in the shape rss.arxiv.org writes it.

Used by the fetch-table test and by benchmarks/bench_sources.py, so the parse time printed there is for the
same kind of body the test stores. A real day of cs.* is about 1,500 items, of which about 38 % are
`replace` / `replace-cross` announcements, 12 % carry TeX accents in their authors, and many abstracts
carry maths.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from xml.sax.saxutils import escape

ANNOUNCE = (("new", 45), ("cross", 17), ("replace", 30), ("replace-cross", 8))
PLAIN_NAMES = ["Mira Okafor", "Jun Tanaka", "Noor Aziz", "Elif Demir", "Marco Rossi", "Yuki Sato", "Ana Souza"]
TEX_NAMES = [r"D\'enes Berta", r"V\'aclav Vavry\v{c}uk", r"Przemys{\l}aw Olbratowski", r"Serdar Kad{\i}o\u{g}lu"]
AFFILIATED = "Tianliang Yan (University of Birmingham, School of Physics and Astronomy, Birmingham, United Kingdom)"
WORDS = [
    *("we", "study", "learning", "models", "data", "training", "method", "results", "show", "performance", "task"),
    *("propose", "approach", "network", "language", "graph", "optimization", "inference", "bounds", "estimator"),
    *("robust", "sparse", "attention", "scaling", "evaluation"),
]
MATHS = [r"$\mathbb{R}^3$", r"$O(n \log n)$", r"$\ell_p$", r"$\alpha \in (0,1)$", "$k$", r"$\epsilon$-greedy"]
TEX_WORDS = [r"Schr\"odinger", r"Cram\'er-Rao", r"Erd\H{o}s", r"Poincar\'e"]


@dataclass(frozen=True, slots=True)
class Listing:
    """The body and what a reader of it should count."""

    body: bytes
    items: int
    replacements: int


def _abstract(rng: random.Random) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < rng.randint(900, 1600):
        roll = rng.random()
        if roll < 0.03:
            words.append(rng.choice(MATHS))
        elif roll < 0.035:
            words.append(rng.choice(TEX_WORDS))
        else:
            words.append(rng.choice(WORDS))
    return " ".join(words).capitalize() + "."


def _authors(rng: random.Random) -> str:
    names = rng.sample(PLAIN_NAMES, rng.randint(1, 5))
    if rng.random() < 0.12:
        names.insert(rng.randrange(len(names) + 1), rng.choice(TEX_NAMES))
    if rng.random() < 0.03:
        names.insert(0, AFFILIATED)
    return ", ".join(names)


def arxiv_listing(n: int, seed: int = 19) -> Listing:
    """`n` items under fresh ids (2602.10000 on), announce types in a real day's proportions."""
    rng = random.Random(seed)
    kinds = [kind for kind, share in ANNOUNCE for _ in range(share)]
    items = []
    replacements = 0
    for i in range(n):
        arxiv_id = f"2602.{10000 + i:05d}"
        kind = rng.choice(kinds)
        replacements += kind.startswith("replace")
        version = rng.randint(2, 4) if kind.startswith("replace") else 1
        title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))).title()
        if rng.random() < 0.03:
            title += " for the " + rng.choice(TEX_WORDS) + " Problem"
        doi = f"\n      <arxiv:DOI>10.1103/PhysRevD.{110 + i % 7}.{i:06d}</arxiv:DOI>" if rng.random() < 0.1 else ""
        items.append(
            f"""    <item>
      <title>{escape(title)}</title>
      <link>https://arxiv.org/abs/{arxiv_id}</link>
      <description>arXiv:{arxiv_id}v{version} Announce Type: {kind}\x20
Abstract: {escape(_abstract(rng))}</description>
      <guid isPermaLink="false">oai:arXiv.org:{arxiv_id}v{version}</guid>
      <category>cs.LG</category>
      <pubDate>Thu, 26 Feb 2026 00:00:00 -0500</pubDate>
      <arxiv:announce_type>{kind}</arxiv:announce_type>
      <dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>
      <dc:creator>{escape(_authors(rng))}</dc:creator>{doi}
    </item>
"""
        )
    head = """<?xml version='1.0' encoding='UTF-8'?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" \
xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/" version="2.0">
  <channel>
    <title>cs.LG updates on arXiv.org</title>
    <link>http://rss.arxiv.org/rss/cs.LG</link>
    <description>cs.LG updates on the arXiv.org e-print archive.</description>
    <atom:link href="https://rss.arxiv.org/rss/cs.LG" rel="self" type="application/rss+xml"/>
    <docs>http://www.rssboard.org/rss-specification</docs>
    <language>en-us</language>
    <lastBuildDate>Thu, 26 Feb 2026 05:00:00 +0000</lastBuildDate>
    <managingEditor>rss-help@arxiv.org</managingEditor>
    <pubDate>Thu, 26 Feb 2026 00:00:00 -0500</pubDate>
"""
    body = head + "".join(items) + "  </channel>\n</rss>\n"
    return Listing(body.encode(), n, replacements)
