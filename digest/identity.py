"""Canonical identity keys for papers: unversioned arXiv id, DOI, title fingerprint.

A record's keys are ordered strongest first; the first is its canonical key. Keys carry a prefix
(`arxiv:`, `doi:`, `title:`) so the three spaces never collide.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from digest.models import PaperRecord

_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}"
_ARXIV_RE = re.compile(
    rf"(?:arxiv\.org/(?:abs|pdf|html)/|oai:arxiv\.org:|arxiv:\s*|^)\s*({_NEW_ID}|{_OLD_ID})(v\d+)?(?:\.pdf)?(?:[?#/].*)?$",
    re.IGNORECASE,
)
_DOI_RE = re.compile(r"(10\.\d{4,9}/\S+)", re.IGNORECASE)

# TeX commands that only style their argument: dropped entirely, argument kept.
_TEX_STYLE = re.compile(
    r"\\(?:mathcal|mathbf|mathrm|mathbb|mathit|mathsf|mathtt|mathfrak|boldsymbol|textbf|textit|textrm|texttt|"
    r"textsc|emph|text|operatorname|bf|it|rm|sf|tt|cal|left|right|big|Big|bigg|Bigg)\b\s*"
)
_TEX_ACCENT = re.compile(r"\\[`'^\"~=.uvHcdbt]\s*\{?([A-Za-z])\}?")
_TEX_CMD = re.compile(r"\\([A-Za-z]+)")
MAX_FINGERPRINT = 240
_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class ArxivId:
    """An arXiv identifier split into its unversioned id and optional version."""

    id: str
    version: int | None


def parse_arxiv_id(text: str | None) -> ArxivId | None:
    """Find an arXiv id in an id, abs/pdf URL, `oai:arXiv.org:` guid or `arXiv:` prefix; None if there is none."""
    if not text:
        return None
    match = _ARXIV_RE.search(text.strip())
    if not match:
        return None
    raw, version = match.group(1), match.group(2)
    if "/" in raw:
        archive, number = raw.split("/", 1)
        raw = f"{archive.lower()}/{number}"
    return ArxivId(raw, int(version[1:]) if version else None)


def normalize_doi(text: str | None) -> str | None:
    """Lower-cased bare DOI (`10.1234/abc`) from a DOI, `doi:` string or doi.org URL; None if there is none."""
    if not text:
        return None
    match = _DOI_RE.search(text.strip())
    if not match:
        return None
    return match.group(1).rstrip(".,;").lower()


def strip_tex(text: str) -> str:
    """Drop TeX markup so `$\\ell_p$` reads as `ell_p` and `\\mathcal{O}(n)` as `O(n)`."""
    text = _TEX_ACCENT.sub(r"\1", text)
    text = _TEX_STYLE.sub("", text)
    text = _TEX_CMD.sub(r"\1", text)
    return text.replace("$", "").replace("{", "").replace("}", "")


def title_fingerprint(title: str) -> str:
    """NFKC, TeX dropped, casefolded, every run of non-alphanumerics folded to one space."""
    text = unicodedata.normalize("NFKC", title)
    text = strip_tex(text).casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return _NON_ALNUM.sub(" ", text).strip()


def record_arxiv_id(record: PaperRecord) -> ArxivId | None:
    """The record's arXiv id, from its own field or else from its external id or URL."""
    for candidate in (record.arxiv_id, record.external_id, record.url):
        found = parse_arxiv_id(candidate)
        if found:
            return found
    return None


def keys_for(record: PaperRecord) -> list[str]:
    """All identity keys of a record, strongest first; never empty for a record with a title."""
    keys: list[str] = []
    arxiv = record_arxiv_id(record)
    if arxiv:
        keys.append(f"arxiv:{arxiv.id}")
    doi = normalize_doi(record.doi)
    if doi:
        keys.append(f"doi:{doi}")
    fingerprint = title_fingerprint(record.title)
    if fingerprint:
        keys.append(title_key(fingerprint))
    return keys


def title_key(fingerprint: str) -> str:
    """`title:` + fingerprint, long fingerprints shortened with a hash so keys stay indexable."""
    if len(fingerprint) <= MAX_FINGERPRINT:
        return f"title:{fingerprint}"
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
    return f"title:{fingerprint[:MAX_FINGERPRINT - 17]}#{digest}"
