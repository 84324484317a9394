"""Following authors: people's names as sources spell them, matched to the names a reader follows.

A name is compared on its surname and its first given name, after folding case and accents: "T. Dao",
"tri dao" and "Dao, Tri" are one person, "Tri Dao" and "Tri Daoud" are not, and an initial meets any given
name it begins ("T." meets "Tri", "Tom"; "Tri" does not meet "Tom"). Middle names do not matter. A name with
no given name (a mononym, or a group) matches only the same single name.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

_SPLIT = re.compile(r"[^\w'’]+")
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv"})
_PARTICLES = frozenset({"van", "von", "de", "der", "den", "da", "di", "du", "del", "della", "le", "la", "bin", "al"})


@dataclass(frozen=True, slots=True)
class NameKey:
    """A name as compared: the surname (with its particles: "van der waals") and the first given name."""

    surname: str
    given: str

    def meets(self, other: NameKey) -> bool:
        """Same surname, and first given names that are equal or an initial of one another."""
        if self.surname != other.surname:
            return False
        a, b = self.given, other.given
        if not a or not b:
            return a == b
        if len(a) == 1 or len(b) == 1:
            return a[0] == b[0]
        return a == b


# letters with no decomposition to a base letter, as names are spelled without them
_PLAIN = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ð": "d", "ħ": "h", "ı": "i", "þ": "th", "æ": "ae", "œ": "oe"})


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).translate(_PLAIN)


@lru_cache(maxsize=262_144)
def name_key(name: str) -> NameKey | None:
    """The comparable form of a person's name, or None for one without letters."""
    text = _fold(name.strip())
    if "," in text:  # "Dao, Tri" / "Kukla, D."
        surname, _, given = text.partition(",")
        text = f"{given} {surname}"
    words = [w.strip("'’") for w in _SPLIT.split(text) if w.strip("'’")]
    words = [w for w in words if w not in _SUFFIXES] or words
    if not words:
        return None
    last = len(words) - 1
    start = last
    while start > 1 and words[start - 1] in _PARTICLES:  # "Johannes van der Waals": surname "van der waals"
        start -= 1
    surname = " ".join(words[start:])
    given = words[0] if start > 0 else ""
    return NameKey(surname, given)


def meets(a: str, b: str) -> bool:
    """Whether two spellings name the same person (symmetric)."""
    ka, kb = name_key(a), name_key(b)
    return ka is not None and kb is not None and ka.meets(kb)


class AuthorIndex:
    """Papers of a pool by their authors' surname and given initial, so each followed name costs a dictionary
    lookup and a look at the few authors who could be them (a common surname alone spans hundreds of papers)."""

    def __init__(self, authors: Iterable[Sequence[str]]) -> None:
        self._by_name: dict[tuple[str, str], list[tuple[int, NameKey]]] = {}
        for i, names in enumerate(authors):
            for name in names:
                key = name_key(name)
                if key is not None:
                    self._by_name.setdefault((key.surname, key.given[:1]), []).append((i, key))

    def papers_by(self, followed: Sequence[str]) -> dict[int, str]:
        """Pool positions of papers by any of these people → the followed name that matched first."""
        found: dict[int, str] = {}
        for person in followed:
            key = name_key(person)
            if key is None:
                continue
            for i, author_key in self._by_name.get((key.surname, key.given[:1]), ()):
                if i not in found and key.meets(author_key):
                    found[i] = person
        return found
