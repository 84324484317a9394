"""Rank papers for a subscriber's interests: normalise, match keywords as phrases (or in part), score, explain.

Rooms, re-exported here: `_text` (the one normaliser), `_synonyms` (the built-in table), `_terms` (keywords
→ terms), `_stats` (the inverted index `Postings`, idf, window statistics), `_semantic` (the optional
sentence-level semantic signal), `_index` (`PaperIndex`, ranking).

`PaperIndex` is built once per run over the candidate pool. Each distinct keyword is compiled once and its
matches are scored once per index (cached), so `rank`, called once per subscriber, only merges the cached
hits of that subscriber's keywords: its cost grows with their matches, not with the pool.

Relevance of a paper = its best keyword's weight × score + `keyword_mix` × the others' (a subscriber's keywords
are alternatives: one strong match is not outweighed by several weak ones). A keyword's score mixes two BM25F views:
(1 − WORD_WEIGHT) × the phrase model, idf(keyword) × saturated Σ over fields of field weight × match quality
× mentions, and WORD_WEIGHT × its words taken one by one, Σ idf(word) × saturated weighted mentions, so
how central the keyword's words are to the paper counts. Quality is 1 for the phrase (or a synonym), less
for all its words in another order, and for only some of its words it rises from almost 0 (their share of
the phrase's idf just reaching min_match / partial_match) to partial_match, so a barely-partial title
match cannot outrank the phrase itself. A paper with no phrase match of at least that share does not count
(the word view only re-scores papers the phrase model found). With the optional semantic signal on
(`semantic_weight` > 0 and the `digest[semantic]` extra installed, `_semantic`), a keyword also earns credit
from the paper's sentence closest to it in meaning (static embeddings), and may find papers none of its words
are in; their explanation says so (`Match.semantic`). Relevance is divided by the subscriber's best, then
trending (log upvotes) and recency are added with small weights, so relevance comes first.
"""

from __future__ import annotations

from digest.ranking._index import Match, PaperIndex, RankedPaper, RankingParams, rank_papers
from digest.ranking._semantic import Embedder, SentenceIndex, load_embedder
from digest.ranking._stats import FIELDS, DocStats, Postings, WindowStats, bm25_idf, paper_fields
from digest.ranking._synonyms import NARROWER, SYNONYM_GROUPS, narrower_for, synonyms_for
from digest.ranking._terms import Interests, KeywordError, Term, Variant, compile_term, compile_terms, parse_keyword
from digest.ranking._text import normalize, spelling_variants, stem, tokens, words

__all__ = [
    "FIELDS",
    "NARROWER",
    "SYNONYM_GROUPS",
    "DocStats",
    "Embedder",
    "Interests",
    "KeywordError",
    "Match",
    "PaperIndex",
    "Postings",
    "RankedPaper",
    "RankingParams",
    "SentenceIndex",
    "Term",
    "Variant",
    "WindowStats",
    "bm25_idf",
    "compile_term",
    "compile_terms",
    "load_embedder",
    "narrower_for",
    "normalize",
    "paper_fields",
    "parse_keyword",
    "rank_papers",
    "spelling_variants",
    "stem",
    "synonyms_for",
    "tokens",
    "words",
]
