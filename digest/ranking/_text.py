"""The one text normaliser shared by papers and keywords, so both sides of a match agree on every token.

NFKC, TeX dropped, acronym plurals folded ("LLMs" → "llm"), casefolded, any non-alphanumeric run (hyphen,
slash, underscore, punctuation) as a space, "-isation" spelled "-ization", articles and "of" dropped, and
Snowball English stems ("models" → "model", "quantized"/"quantization" → "quantiz").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer

from digest.identity import strip_tex

STOPWORDS = frozenset({"a", "an", "the", "of"})
# Word prefixes written both joined and hyphenated ("pretraining" / "pre-training").
PREFIXES = ("pre", "post", "multi", "non", "semi", "self", "sub", "meta", "hyper", "cross", "co", "re")
SPLIT_PREFIXES = ("pre", "post", "multi", "non", "semi", "self", "meta", "hyper", "cross")

_SPLIT = re.compile(r"[^0-9a-z]+")
_ACRONYM_PLURAL = re.compile(r"(?<=[A-Z0-9])s\b")
_VOWELS = frozenset("aeiouy")
_stemmer = Stemmer.Stemmer("english")


def _fold_acronym_plural(match: re.Match[str]) -> str:
    """Acronym plurals to singular ("LLMs", "MoEs", "GPUs"): drop an `s` after a word with 2+ capitals."""
    text, end = match.string, match.start()
    start = end
    while start > 0 and text[start - 1].isalnum():
        start -= 1
    word = text[start:end]
    return "" if len(word) >= 2 and sum(c.isupper() for c in word) >= 2 else "s"


def words(text: str) -> list[str]:
    """NFKC, TeX dropped, acronym plurals folded, casefolded, split on anything not a letter or digit."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    if "\\" in text or "$" in text or "{" in text or "}" in text:
        text = strip_tex(text)
    text = _ACRONYM_PLURAL.sub(_fold_acronym_plural, text).casefold()
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return [w for w in _SPLIT.split(text) if w]


def normalize(text: str) -> str:
    """The normalised text: its `words` separated by single spaces."""
    return " ".join(words(text))


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    """Stem of one normalised word; lower-case acronym plurals ("llms", "gnns") lose their `s` first."""
    if len(word) >= 4 and word.endswith("s") and not word.endswith("ss") and not (_VOWELS & set(word[:-1])):
        word = word[:-1]
    if word.endswith(("isation", "isations")):
        word = word.replace("isation", "ization")
    return str(_stemmer.stemWord(word))


def tokens(text: str) -> list[str]:
    """Normalised, stemmed tokens of a text, in order, stopwords dropped."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


def spelling_variants(text: str) -> set[tuple[str, ...]]:
    """Token sequences a phrase may appear as: itself, and prefixed words joined or split ("pre training")."""
    kept = [w for w in words(text) if w not in STOPWORDS]
    base = tuple(stem(w) for w in kept)
    variants = {base}
    for i in range(len(kept) - 1):
        if kept[i] in PREFIXES:
            variants.add((*base[:i], stem(kept[i] + kept[i + 1]), *base[i + 2 :]))
    for i, word in enumerate(kept):
        for prefix in SPLIT_PREFIXES:
            rest = word[len(prefix) :]
            if word.startswith(prefix) and len(rest) >= 4:
                variants.add((*base[:i], prefix, stem(rest), *base[i + 1 :]))
    return {v for v in variants if v}
