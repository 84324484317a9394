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
_RAW_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_VOWELS = frozenset("aeiouy")
_stemmer = Stemmer.Stemmer("english")


def _fold_acronym_plural(match: re.Match[str]) -> str:
    """Acronym plurals to singular ("LLMs", "MoEs", "GPUs"): a final `s` after a capital or digit, 2+ capitals."""
    word = match.group(0)
    plural = len(word) >= 3 and word[-1] == "s" and (word[-2].isupper() or word[-2].isdigit())
    return word[:-1] if plural and sum(c.isupper() for c in word) >= 2 else word


def normalize(text: str) -> str:
    """NFKC, TeX dropped, acronym plurals folded, casefolded; words separated by single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = strip_tex(text)
    text = _RAW_WORD.sub(_fold_acronym_plural, text)
    text = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    return " ".join(_SPLIT.split(text)).strip()


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
    return [stem(w) for w in normalize(text).split() if w not in STOPWORDS]


def spelling_variants(text: str) -> set[tuple[str, ...]]:
    """Token sequences a phrase may appear as: itself, and prefixed words joined or split ("pre training")."""
    words = [w for w in normalize(text).split() if w not in STOPWORDS]
    base = tuple(stem(w) for w in words)
    variants = {base}
    for i in range(len(words) - 1):
        if words[i] in PREFIXES:
            variants.add((*base[:i], stem(words[i] + words[i + 1]), *base[i + 2 :]))
    for i, word in enumerate(words):
        for prefix in SPLIT_PREFIXES:
            rest = word[len(prefix) :]
            if word.startswith(prefix) and len(rest) >= 4:
                variants.add((*base[:i], prefix, stem(rest), *base[i + 1 :]))
    return {v for v in variants if v}
