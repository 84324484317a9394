"""Keywords compiled into terms: a weight, and every token sequence (synonym, spelling) that counts as it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from digest.ranking._synonyms import narrower_for, synonyms_for
from digest.ranking._text import spelling_variants, tokens

_WEIGHT = re.compile(r"^(.*?)\^\s*([0-9]*\.?[0-9]+)\s*$")


class KeywordError(ValueError):
    """A keyword that cannot be used (empty, or a bad weight)."""


@dataclass(frozen=True, slots=True)
class Variant:
    """One token sequence that counts as a keyword: `kind` is "same" (it, a synonym, a spelling) or "narrower"."""

    phrase: tuple[str, ...]
    text: str
    kind: str
    partial: bool


@dataclass(frozen=True, slots=True)
class Term:
    """One keyword as the subscriber wrote it, with its weight and every token sequence that counts as it."""

    label: str
    weight: float
    variants: tuple[Variant, ...]
    key: str = field(default="", compare=False)

    @property
    def phrases(self) -> tuple[tuple[str, ...], ...]:
        return tuple(v.phrase for v in self.variants)


def parse_keyword(raw: str) -> tuple[str, float]:
    """`"mamba^2"` → ("mamba", 2.0); a plain keyword weighs 1."""
    text = raw.strip()
    weight = 1.0
    match = _WEIGHT.match(text)
    if match:
        text, weight = match.group(1).strip(), float(match.group(2))
    if not text or not tokens(text):
        raise KeywordError(f"keyword {raw!r} has no words")
    if not 0 < weight <= 100:
        raise KeywordError(f"keyword {raw!r}: weight must be above 0 and at most 100")
    return text, weight


@lru_cache(maxsize=65536)
def compile_term(raw: str, synonyms: bool = True) -> Term:
    """One keyword → its term (cached: every subscriber writing the same keyword shares it)."""
    label, weight = parse_keyword(raw)
    variants: dict[tuple[str, ...], Variant] = {}

    def add(text: str, kind: str, own: bool) -> None:
        main = tuple(tokens(text))
        for phrase in sorted(spelling_variants(text)):
            if phrase not in variants:
                variants[phrase] = Variant(phrase, text, kind, partial=own and phrase == main and len(phrase) > 1)

    add(label, "same", own=True)
    if synonyms:
        for other in synonyms_for(label):
            add(other, "same", own=False)
        for other in narrower_for(label):
            add(other, "narrower", own=False)
    key = "\x1f".join(f"{v.kind}\x1e{' '.join(v.phrase)}\x1e{v.text}\x1e{v.partial}" for v in variants.values())
    return Term(label, weight, tuple(variants.values()), key)


def compile_terms(keywords: Iterable[str], synonyms: bool = True) -> tuple[Term, ...]:
    """Keywords → terms, each with its synonym phrases when `synonyms` is on."""
    return tuple(compile_term(k, synonyms) for k in keywords)


@dataclass(frozen=True, slots=True)
class Interests:
    """What one subscriber asked for."""

    keywords: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    max_papers: int = 10
    synonyms: bool = True
