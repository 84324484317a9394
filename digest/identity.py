"""Canonical identity keys for papers: unversioned arXiv id, DOI, title fingerprint.

A record's keys are ordered strongest first; the first is its canonical key. Keys carry a prefix
(`arxiv:`, `doi:`, `title:`) so the three spaces never collide.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote, urlsplit

from digest.models import PaperRecord

_NEW_ID = r"(?P<yymm>\d{4})\.(?P<number>\d{4,5})"
_OLD_ID = r"(?P<archive>[a-z]+(?:-[a-z]+)?)(?:\.[a-z]{2})?/(?P<old>\d{7})"
_ARXIV_RE = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf|html|format)/|oai:arxiv\.org:|arxiv:\s*|10\.48550/arxiv\.|huggingface\.co/papers/|^)"
    rf"\s*(?:{_NEW_ID}|{_OLD_ID})(?:v(?P<version>\d+))?(?![\w-]|\.\d)",
    re.IGNORECASE,
)
_DOI_RE = re.compile(r"10\.\d{4,9}/[^\s\"]+", re.IGNORECASE)

# TeX commands that only style their argument: dropped entirely, argument kept.
_TEX_STYLE = re.compile(
    r"\\(?:mathcal|mathbb|mathbf|mathrm|mathit|mathsf|mathtt|mathfrak|mathscr|boldsymbol|bm|textbf|textit|"
    r"textrm|texttt|textsc|textsf|textsl|textup|textnormal|emph|text|mbox|operatorname|displaystyle|"
    r"bf|it|rm|sf|tt|sc|em|cal|left|right|big|Big|bigg|Bigg)(?![A-Za-z])\s*"
)
# Accents: symbol accents may touch their letter (`\'e`), letter accents are control words (`\v{c}`, `\c c`),
# so `\beta`, `\delta` or `\textbf` are never mistaken for an accent.
_TEX_ACCENT = re.compile(r"\\(?:[`'^\"~=.]|[uvHcdbtrk](?![A-Za-z]))\s*(?:\{\s*\\?([A-Za-z])\s*\}|\\?([A-Za-z]))")
_TEX_CMD = re.compile(r"\\([A-Za-z]+)")
# Style words that only ever come from TeX whose backslash a page already dropped (`mathbb R`).
_TEX_WORDS = re.compile(
    r"mathcal|mathbb|mathbf|mathrm|mathit|mathsf|mathtt|mathfrak|mathscr|boldsymbol|textbf|textit|textrm|"
    r"texttt|textsc|textsf|operatorname|displaystyle"
)
_VAR_GREEK = re.compile(r"var(?=epsilon|theta|phi|pi|rho|sigma|kappa)")
_GREEK_NAMES = [  # α … ω in code point order; ς (final sigma) sits before σ
    *("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu"),
    *("nu", "xi", "omicron", "pi", "rho", "sigma", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"),
]
_SYMBOLS = str.maketrans(
    {
        **{chr(0x3B1 + i): name for i, name in enumerate(_GREEK_NAMES)},
        "ℓ": "ell",
        "∞": "infty",
        "ø": "o",
        "æ": "ae",
        "œ": "oe",
        "ł": "l",
        "đ": "d",
        "ð": "d",
        "þ": "th",
        "ı": "i",
    }
)
_TEX_CHARS = re.compile(r"[\\${}]")
MAX_FINGERPRINT = 240
_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)

KEY_PREFIXES = ("arxiv:", "doi:", "title:")


@dataclass(frozen=True, slots=True)
class ArxivId:
    """An arXiv identifier split into its unversioned id and optional version."""

    id: str
    version: int | None


def _valid_new(yymm: str, number: str) -> bool:
    month = int(yymm[2:])
    return 1 <= month <= 12 and len(number) == (5 if yymm >= "1501" else 4)


@functools.lru_cache(maxsize=1 << 16)
def parse_arxiv_id(text: str | None) -> ArxivId | None:
    """Find an arXiv id in an id, abs/pdf URL, `oai:arXiv.org:` guid, `arXiv:` prefix, arXiv DOI or HF paper URL.

    New-style ids must have a real month and the digit count of their era; old-style ids lose their subject
    class (`math.GT/0309136` is `math/0309136`). None when there is no such id.
    """
    if not text:
        return None
    for match in _ARXIV_RE.finditer(text.strip()):
        version = int(match["version"]) if match["version"] else None
        if match["yymm"]:
            if _valid_new(match["yymm"], match["number"]):
                return ArxivId(f"{match['yymm']}.{match['number']}", version)
        elif 1 <= int(match["old"][2:4]) <= 12:
            return ArxivId(f"{match['archive'].lower()}/{match['old']}", version)
    return None


def normalize_doi(text: str | None) -> str | None:
    """Lower-cased bare DOI (`10.1234/abc`) from a DOI, `doi:` string or (percent-encoded) doi.org URL."""
    if not text:
        return None
    match = _DOI_RE.search(unquote(text.strip()))
    if not match:
        return None
    doi = match.group(0).rstrip(".,;:'")
    for close, open_ in ((")", "("), ("]", "["), (">", "<")):
        while doi.endswith(close) and doi.count(close) > doi.count(open_):
            doi = doi[:-1]
    return doi.lower()


def strip_tex(text: str) -> str:
    """Drop TeX markup: `$\\ell_p$` reads as `ell_p`, `\\mathcal{O}(n)` as `O(n)`, `Schr\\"odinger` as `Schrodinger`."""
    text = _TEX_ACCENT.sub(lambda m: m.group(1) or m.group(2), text)
    text = _TEX_STYLE.sub("", text)
    text = _TEX_CMD.sub(r"\1", text)
    return text.replace("$", "").replace("{", "").replace("}", "")


def title_fingerprint(title: str) -> str:
    """NFKC, TeX dropped, casefolded, accents and Greek letters spelled plainly, non-alphanumeric runs to one space.

    Greek letters become their TeX names (`α` and `$\\alpha$` agree), `ℓ` becomes `ell`, and TeX style words a
    page left behind without their backslash (`mathbb R`) are dropped, so page dumps, feeds and TeX agree.
    """
    text = html.unescape(title) if "&" in title else title
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text.replace("ℓ", "ell"))
    if _TEX_CHARS.search(text):
        text = strip_tex(text)
    text = text.casefold()
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
        text = text.translate(_SYMBOLS)
    text = _VAR_GREEK.sub("", _TEX_WORDS.sub(" ", text))
    return _NON_ALNUM.sub(" ", text).strip()


def record_arxiv_id(record: PaperRecord) -> ArxivId | None:
    """The record's arXiv id, from its own field or else from its external id, URL or an arXiv DOI."""
    for candidate in (record.arxiv_id, record.external_id, record.url, record.doi):
        found = parse_arxiv_id(candidate)
        if found:
            return found
    return None


def keys_for(record: PaperRecord) -> list[str]:
    """All identity keys of a record, strongest first; never empty (a title of only markup gets a hashed key).

    A record with neither arXiv id nor DOI but a link also gets its title key tied to that link
    (`title_link_key`): the key it is found by when another item of the same title ("Correction",
    "Editorial") owns the plain title key.
    """
    keys: list[str] = []
    arxiv = record_arxiv_id(record)
    if arxiv:
        keys.append(f"arxiv:{arxiv.id}")
    doi = normalize_doi(record.doi)
    if doi:
        keys.append(f"doi:{doi}")
    title = title_key(title_fingerprint(record.title), record.title)
    keys.append(title)
    if not keys[:-1] and record.url:
        keys.append(title_link_key(title, record.url))
    return keys


def title_link_key(title: str, link: str) -> str:
    """A title key narrowed to one link: `title:correction@` + a hash of the link (kept short to stay indexable)."""
    return f"{title}@{hashlib.sha256(link_identity(link).encode()).hexdigest()[:16]}"


def link_identity(link: str) -> str:
    """A link as an item's identity: scheme, `www.`, letter case of the host, a trailing slash and the fragment
    do not tell two items apart; the path and query do."""
    text = link.strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return text
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = _port(parts)
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{f':{port}' if port else ''}{parts.path.rstrip('/')}{query}"


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def key_strength(key: str) -> int:
    """0 for an arXiv key, 1 for a DOI, 2 for a title key: lower is stronger."""
    for rank, prefix in enumerate(KEY_PREFIXES):
        if key.startswith(prefix):
            return rank
    raise ValueError(f"not an identity key: {key!r}")


def title_key(fingerprint: str, title: str = "") -> str:
    """`title:` + the fingerprint without its spaces, so `ell_p`/`ℓp` and `Pre-training`/`Pretraining` agree.

    Long fingerprints are shortened with a hash so keys stay indexable; an empty one (a title of only
    punctuation or markup) is keyed by a hash of the raw title.
    """
    compact = fingerprint.replace(" ", "")
    if not compact:
        raw = " ".join(title.split()).casefold()
        return f"title:#{hashlib.sha256(raw.encode()).hexdigest()[:24]}"
    if len(compact) <= MAX_FINGERPRINT:
        return f"title:{compact}"
    digest = hashlib.sha256(compact.encode()).hexdigest()[:16]
    return f"title:{compact[: MAX_FINGERPRINT - 17]}#{digest}"
