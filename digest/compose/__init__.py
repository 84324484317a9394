"""Compose: a subscriber's ranked papers → one multipart/alternative email (text + HTML), as exact bytes.

Three rooms, re-exported here (callers use these names, never the private modules): `_views` builds the
plain view models templates see (cleaned, clipped, linked), `_headers` decides every header once and folds
it, `_render` loads the templates (CSS inlined once) and fits the message under its size cap.
"""

from __future__ import annotations

from digest.compose._headers import (
    Headers,
    address,
    boundary_for,
    header_lines,
    headers_for,
    list_id,
    message_id,
    unsubscribe_links,
    unsubscribe_token,
)
from digest.compose._render import MAX_BYTES, Composer, Fitted, templates_dir
from digest.compose._views import (
    SUMMARY_STEPS,
    DigestInfo,
    LinkView,
    MatchView,
    PaperView,
    clip,
    excerpt,
    link_for_email,
    one_line,
    paper_url,
    paper_views,
    short_authors,
    subject_for,
    wrap,
)

__all__ = [
    "MAX_BYTES",
    "SUMMARY_STEPS",
    "Composer",
    "DigestInfo",
    "Fitted",
    "Headers",
    "LinkView",
    "MatchView",
    "PaperView",
    "address",
    "boundary_for",
    "clip",
    "excerpt",
    "header_lines",
    "headers_for",
    "link_for_email",
    "list_id",
    "message_id",
    "one_line",
    "paper_url",
    "paper_views",
    "short_authors",
    "subject_for",
    "templates_dir",
    "unsubscribe_links",
    "unsubscribe_token",
    "wrap",
]
