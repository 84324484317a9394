"""The one place sources turn what feeds write into what readers see: inline markup, TeX accents, names, DOIs.

Every source (Hugging Face, both arXiv modes, any RSS/Atom feed, files) passes its titles, abstracts and author
lists through here, so one person or one formula is spelled the same whichever source brought the paper.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import urlsplit

from pylatexenc.latex2text import LatexNodes2Text

from digest.identity import normalize_doi
from digest.sources.base import clean_text

# ---------------------------------------------------------------- markup

# Tags start with a letter (or are comments / declarations), so "p < 0.05 and q > 1" is text, not a tag.
_TAG = re.compile(r"<(?:/?[A-Za-z][\w:.-]*(?:\s[^>]*)?/?|!--.*?--|![^>]*)>", re.DOTALL)
_BLOCK = re.compile(
    r"</?(?:p|br|hr|div|li|ul|ol|dl|dt|dd|h\d|blockquote|pre|table|thead|tbody|tfoot|tr|td|th|caption|section|"
    r"article|aside|header|footer|nav|figure|figcaption|address|main)\b[^>]*>",
    re.IGNORECASE,
)
_SUBSUP = re.compile(r"<(sub|sup)\b[^>]*>(.*?)</\1\s*>", re.IGNORECASE | re.DOTALL)
_SUPERSCRIPT = str.maketrans("0123456789+-−=()n", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿ")
_SUBSCRIPT = str.maketrans("0123456789+-−=()", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎")
_SUPERSCRIPTABLE = frozenset("0123456789+-−=()n")
_SUBSCRIPTABLE = frozenset("0123456789+-−=()")


def _script(match: re.Match[str]) -> str:
    """`<sub>2</sub>` as ₂ and `<sup>2+</sup>` as ²⁺ when every character has such a form, else the text itself."""
    inner = html.unescape(_TAG.sub("", match.group(2))).strip()
    sup = match.group(1).lower() == "sup"
    if inner and set(inner) <= (_SUPERSCRIPTABLE if sup else _SUBSCRIPTABLE):
        return inner.translate(_SUPERSCRIPT if sup else _SUBSCRIPT)
    return inner


def strip_markup(value: str) -> str:
    """Plain text from an HTML fragment: block-level tags separate words, inline ones do not (`CO<sub>2</sub>`
    is `CO₂`, not `CO 2`), entities decoded. White space is left for `clean_text` to collapse."""
    if "<" not in value:
        return html.unescape(value) if "&" in value else value
    text = _SUBSUP.sub(_script, value) if "<s" in value.lower() else value
    text = _TAG.sub("", _BLOCK.sub(" ", text))
    return html.unescape(text)


# ---------------------------------------------------------------- TeX

# Maths is left exactly as written: $…$, $$…$$, \(…\), \[…\] (an escaped \$ opens nothing).
_MATH = re.compile(r"(\$\$.+?\$\$|(?<!\\)\$(?:[^$\\]|\\.)+?\$|\\\(.+?\\\)|\\\[.+?\\\])", re.DOTALL)
_MACRO = re.compile(r"\\([A-Za-z]+|[^A-Za-z])")
_WORD = re.compile(r"\S+")
_ENDS_IN_ACCENT = re.compile(r"\\(?:[`'^\"~=.]|[uvHcdbtrk])$")  # `Fran\c cois`: the accent takes the next word
# Text-mode macros a feed's metadata uses for letters and punctuation; a word holding any other macro
# (`\alpha` outside maths, `\cite{…}`, a Windows path) is left as written rather than guessed at.
TEXT_MACROS = frozenset(
    [
        *"`'^\"~=.uvHcdbtrk$%&#_{} -,",
        *("l", "L", "o", "O", "i", "j", "ss", "SS", "ae", "AE", "oe", "OE", "aa", "AA"),
        *("dh", "DH", "dj", "DJ", "ng", "NG", "th", "TH"),
        *("textit", "textbf", "textrm", "textsc", "textsf", "texttt", "textup", "textsl", "textnormal", "emph"),
        *("em", "it", "bf", "rm", "sc", "sf", "tt", "sl", "mbox", "text", "textendash", "textemdash"),
        *("ldots", "dots", "textquoteright", "textquoteleft"),
    ]
)
_LATEX = LatexNodes2Text(math_mode="verbatim", strict_latex_spaces=True)


@lru_cache(maxsize=8192)
def _tex_word(word: str) -> str:
    """One word's TeX as Unicode (pylatexenc), or the word unchanged when it holds a macro we do not convert
    or converts to a bare combining accent (`\\'t`: an escaped apostrophe, not an acute t)."""
    if any(m not in TEXT_MACROS for m in _MACRO.findall(word)):
        return word
    try:
        text = unicodedata.normalize("NFC", _LATEX.latex_to_text(word))
    except Exception:  # a parser failure on one word must not lose the item: keep what the feed wrote
        return word
    if any(unicodedata.combining(c) for c in text):
        return word
    return text


def _tex_text(segment: str) -> str:
    """Convert each word of a maths-free segment that holds a backslash; braces may span words (`{\\em a b}`)."""
    out: list[str] = []
    last = 0
    pending: list[re.Match[str]] = []
    depth = 0
    for match in _WORD.finditer(segment):
        token = match.group()
        pending.append(match)
        depth += token.count("{") - token.count("\\{") - token.count("}") + token.count("\\}")
        if depth > 0 or _ENDS_IN_ACCENT.search(token):
            continue
        start, end = pending[0].start(), pending[-1].end()
        word = segment[start:end]
        out.append(segment[last:start])
        out.append(_tex_word(word) if "\\" in word else word)
        last = end
        pending = []
        depth = 0
    out.append(segment[last:])
    return "".join(out)


def tex_to_unicode(text: str) -> str:
    """TeX accents, special letters and escapes outside maths as Unicode: `Schr\\"odinger` → `Schrödinger`,
    `Przemys{\\l}aw` → `Przemysław`, `\\$1M` → `$1M`. Maths (`$\\mathbb{R}^3$`) stays as written."""
    if "\\" not in text:
        return text
    parts = _MATH.split(text)
    return "".join(part if i % 2 else (_tex_text(part) if "\\" in part else part) for i, part in enumerate(parts))


def plain(value: object, *, limit: int | None = None, markup: bool = True) -> str:
    """A title or abstract as readers see it: markup dropped (when `markup`), TeX as Unicode, one line, clipped."""
    if not isinstance(value, str):
        return ""
    text = strip_markup(value) if markup else value
    return clean_text(tex_to_unicode(clean_text(text)), limit=limit)


# ---------------------------------------------------------------- names

_PAREN_DEPTH = str.maketrans({"[": "(", "]": ")"})
_INITIAL = re.compile(r"^[^\W\d_]\.?$")
_ET_AL = re.compile(r"^(?:and\s+)?(?:et\.?\s*al\.?|others)(?:\s*\(.*\))?$", re.IGNORECASE)
_NOT_SHOWN = re.compile(r"^\(?\s*\d+\s+additional authors? not shown\s*\)?$", re.IGNORECASE)
_AFFILIATION = re.compile(r"\s*\((?:[^()]|\([^()]*\))*\)\s*$")
_AND = re.compile(r"(?:^|\s)(?:and|&)\s+", re.IGNORECASE)
_HAS_LETTER = re.compile(r"[^\W\d_]")
_GENERATION = re.compile(r"^(?:Jr|Sr|II|III|IV)\.?$")
MAX_NAME = 300


def _split_top(text: str) -> list[str]:
    """`text` cut at commas and semicolons outside parentheses and brackets (affiliations hold commas)."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, c in enumerate(text.translate(_PAREN_DEPTH)):
        if c == "(":
            depth += 1
        elif c == ")":
            depth = max(0, depth - 1)
        elif c in ",;" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _initials(part: str) -> bool:
    """`D.`, `F. S.`, `J.-P.` or `JP`: given names as bioRxiv writes them after the surname."""
    if len(part) <= 2 and part.isalpha() and part.isupper():
        return True
    letters = [t for t in re.split(r"[\s\-]+", part) if t]
    return bool(letters) and all(_INITIAL.match(t) and t[0].isupper() and t.endswith(".") for t in letters)


def _inverted(surname: str, given: str) -> bool:
    """`Martín, Rosa`, `van der Berg, J.`: one person written surname first (not two people)."""
    if not surname or not given:
        return False
    return _initials(given) or " " not in surname or surname[:1].islower()


def _clean_name(part: str) -> str:
    name = clean_text(_AFFILIATION.sub("", part), limit=MAX_NAME).strip(" ,;")
    return name if _HAS_LETTER.search(name) else ""


def split_names(text: str, *, one_person: bool = False) -> list[str]:
    """Author names from one string as feeds write it, in order.

    Handles a comma-joined list (arXiv's `<dc:creator>`, Atypon's), parenthesised affiliations holding commas
    (dropped), bioRxiv's `Kukla, D., Crampton, A.` surname–initials pairs (`D. Kukla`), a closing `and`,
    `et al.` and `(909 additional authors not shown)` (dropped), TeX accents. With `one_person`
    (the feed gives one element per author) a single `Surname, Given` is that one person.
    """
    text = clean_text(tex_to_unicode(text))
    if not text:
        return []
    parts = [_AFFILIATION.sub("", p).strip() for p in _split_top(text)]
    if one_person and len(parts) == 2 and _inverted(parts[0], parts[1]):
        return [name] if (name := _clean_name(f"{parts[1]} {parts[0]}")) else []
    if len(parts) > 1:
        pieces = [p.strip() for p in _AND.split(parts[-1])]
        parts[-1:] = [p for p in pieces if p]
    names: list[str] = []
    paired = False
    for part in parts:
        if not part or _ET_AL.match(part) or _NOT_SHOWN.match(part):
            paired = False
            continue
        if names and _GENERATION.match(part):
            names[-1] = f"{names[-1]}, {part}"
            continue
        if names and not paired and _initials(part) and not _initials(names[-1]):
            names[-1] = f"{part} {names[-1]}"
            paired = True
            continue
        names.append(part)
        paired = False
    return [n for n in (_clean_name(n) for n in names) if n]


def author_list(values: Iterable[object], *, limit: int = 500) -> tuple[str, ...]:
    """Names from a feed's author elements (HTML and TeX allowed), in order, without blanks or repeats: one
    element may list many people (split), several elements are one person each."""
    raw = [strip_markup(v) for v in values if isinstance(v, str) and v.strip()]
    names: list[str] = []
    for value in raw:
        for name in split_names(value, one_person=len(raw) > 1):
            if name not in names:
                names.append(name)
                if len(names) >= limit:
                    return tuple(names)
    return tuple(names)


# ---------------------------------------------------------------- DOIs


def find_doi(*candidates: object) -> str | None:
    """The first DOI among a record's identifiers, lower-cased and bare: `info:doi/10.1126/…`, `doi: 10.3390/…`,
    `https://doi.org/…`. A link's query string (`?af=R`, `?rss=1`) is never part of its DOI."""
    for candidate in candidates:
        if not isinstance(candidate, str) or "10." not in candidate:
            continue
        text = candidate.strip()
        if text.lower().startswith(("http://", "https://")):
            try:
                parts = urlsplit(text)
            except ValueError:
                continue
            text = parts.path
        doi = normalize_doi(text)
        if doi:
            return doi
    return None


__all__ = ["author_list", "find_doi", "plain", "split_names", "strip_markup", "tex_to_unicode"]
