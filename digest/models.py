"""Data shapes: the plain `PaperRecord` every source yields, and the SQLModel tables of the store.

Datetimes are timezone-aware UTC everywhere (SQLModel stores them as UTC on every backend).
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, BigInteger, Column, Index, LargeBinary, UniqueConstraint
from sqlmodel import Field, SQLModel

# 2: subscriber_state and feedback (older code would mail unsubscribed readers); message bytes leave the
#    delivery row for delivery_message, compressed
SCHEMA_VERSION = 2


class PaperRecord(BaseModel):
    """One sighting of a paper as a source reports it, before identity and storage."""

    model_config = ConfigDict(frozen=True)

    source: str
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    arxiv_id: str | None = None
    doi: str | None = None
    url: str | None = None
    thumbnail: str | None = None
    upvotes: int | None = None
    comments: int | None = None
    keywords: tuple[str, ...] = ()
    ai_summary: str | None = None
    github_repo: str | None = None
    project_page: str | None = None
    published_at: dt.datetime | None = None
    featured_at: dt.datetime | None = None
    external_id: str | None = PydanticField(default=None, description="the source's own id (guid, url)")


class DeliveryStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"


class Meta(SQLModel, table=True):
    """Key/value facts about the database itself, such as the schema version."""

    key: str = Field(primary_key=True, max_length=64)
    value: str


class Paper(SQLModel, table=True):
    """One distinct paper, whatever sources and spellings it was seen under."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, unique=True, max_length=512)
    arxiv_id: str | None = Field(default=None, index=True, max_length=64)
    arxiv_version: int | None = None
    doi: str | None = Field(default=None, max_length=256)
    title: str
    abstract: str = ""
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    url: str | None = None
    thumbnail: str | None = None
    upvotes: int = 0
    comments: int = 0
    keywords: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    ai_summary: str | None = None
    github_repo: str | None = None
    project_page: str | None = None
    published_at: dt.datetime | None = None
    featured_at: dt.datetime | None = None
    first_seen_at: dt.datetime = Field(index=True)
    last_seen_at: dt.datetime
    sources: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class PaperKey(SQLModel, table=True):
    """Every identity key ever seen for a paper (arXiv id, DOI, title fingerprint) → the paper."""

    __tablename__ = "paper_key"
    __table_args__ = {"sqlite_with_rowid": False}

    key: str = Field(primary_key=True, max_length=512)
    paper_id: int = Field(foreign_key="paper.id", index=True)


class Sighting(SQLModel, table=True):
    """That a source reported a paper: first and last time, and under which of its own ids."""

    __table_args__ = (UniqueConstraint("paper_id", "source", name="uq_sighting_paper_source"),)

    id: int | None = Field(default=None, primary_key=True)
    paper_id: int = Field(foreign_key="paper.id", index=True)
    source: str = Field(max_length=128)
    external_id: str | None = None
    first_seen_at: dt.datetime
    last_seen_at: dt.datetime


class Delivery(SQLModel, table=True):
    """One subscriber's digest for one local date: the outbox row, holding the exact bytes to send."""

    __table_args__ = (
        UniqueConstraint("subscriber", "digest_date", name="uq_delivery_subscriber_date"),
        # Covers the outbox query (what is due, oldest first), so it never reads a row.
        Index("ix_delivery_outbox", "status", "created_at", "id", "next_attempt_at", "claimed_until"),
        # A subscriber's recent deliveries (what planning asks per chunk), found without visiting their
        # older history or anybody else's: a status index would make each chunk scan every pending row.
        # Covering (status included), so planning never reads a row, whose created_at lies past the message.
        Index("ix_delivery_subscriber_created", "subscriber", "created_at", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    subscriber: str = Field(index=True, max_length=320)
    digest_date: dt.date = Field(index=True)
    status: str = Field(default=DeliveryStatus.pending, index=True, max_length=16)
    attempts: int = 0
    last_error: str | None = None
    message_id: str | None = Field(default=None, max_length=512)
    created_at: dt.datetime
    sent_at: dt.datetime | None = None
    next_attempt_at: dt.datetime | None = None
    claimed_by: str | None = Field(default=None, max_length=128)
    claimed_until: dt.datetime | None = None


class DeliveryMessage(SQLModel, table=True):
    """A digest's exact message bytes, compressed (`store.message_bytes` reads them back), beside its
    outbox row: a status update never rewrites them, and retention drops them while the row stays."""

    __tablename__ = "delivery_message"

    delivery_id: int = Field(foreign_key="delivery.id", primary_key=True)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class MessageDictionary(SQLModel, table=True):
    """A zstd dictionary trained on one planning run's digests, which its messages are compressed against
    (the id is the one zstd writes in each frame). Kept while a stored message may still need it."""

    __tablename__ = "message_dict"

    id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    created_at: dt.datetime
    last_used_at: dt.datetime


class DeliveryItem(SQLModel, table=True):
    """A paper placed in a delivery, with the rank, score and matched terms it was shown with."""

    __tablename__ = "delivery_item"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: int = Field(foreign_key="delivery.id", index=True)
    paper_id: int = Field(foreign_key="paper.id", index=True)
    rank: int
    score: float
    matched: list[Any] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class FetchRun(SQLModel, table=True):
    """One poll of one source and what it brought."""

    __tablename__ = "fetch_run"

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(index=True, max_length=128)
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    status: str = Field(default="running", max_length=16)
    seen: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    error: str | None = None


class SourceState(SQLModel, table=True):
    """Per-source HTTP validators (ETag / Last-Modified) for conditional GET."""

    __tablename__ = "source_state"

    source: str = Field(primary_key=True, max_length=128)
    url: str = Field(primary_key=True, max_length=2048)
    etag: str | None = None
    last_modified: str | None = None
    updated_at: dt.datetime | None = None


class SubscriberStatus(StrEnum):
    active = "active"
    paused = "paused"
    unsubscribed = "unsubscribed"


class SubscriberState(SQLModel, table=True):
    """A reader's own choice (from the web or an operator's `digest unsubscribe`), which overrides the config
    file: paused and unsubscribed readers get nothing until they resume or resubscribe. No row: active."""

    __tablename__ = "subscriber_state"

    subscriber: str = Field(primary_key=True, max_length=320)  # the address, lower-cased
    status: str = Field(default=SubscriberStatus.active, max_length=16, index=True)
    updated_at: dt.datetime
    via: str = Field(default="web", max_length=16)


class Feedback(SQLModel, table=True):
    """A reader's "more like this" (+1) or "less like this" (−1) on a paper: one row per reader and paper,
    the last choice wins, an undo deletes it."""

    __table_args__ = (UniqueConstraint("subscriber", "paper_id", name="uq_feedback_subscriber_paper"),)

    id: int | None = Field(default=None, primary_key=True)
    subscriber: str = Field(max_length=320, index=True)  # the address, lower-cased
    paper_id: int = Field(foreign_key="paper.id", index=True)
    value: int
    created_at: dt.datetime
    via: str = Field(default="web", max_length=16)


class ReaderModelRow(SQLModel, table=True):
    """A reader's learnt model (`digest.learning.ReaderModel.to_bytes`, zlib-compressed) and the fingerprint of
    what it was trained on: rebuilt only when their feedback or library changed."""

    __tablename__ = "reader_model"

    subscriber: str = Field(primary_key=True, max_length=320)  # the address, lower-cased
    fingerprint: str = Field(max_length=64)
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    built_at: dt.datetime
