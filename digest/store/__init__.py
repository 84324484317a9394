"""All storage in one package: engine and schema, paper upsert with identity merge, fetch runs, the outbox.

Functions take a SQLAlchemy `Connection` so callers decide the transaction: `digest preview` runs the
whole job in one that it rolls back, `digest send` commits. Dialect-specific SQL lives in
`_papers._upsert_sightings` and `_engine._configure_sqlite` only. The pure rules of which records are one
paper and which facts win live in `digest.merge`; the modules here look keys up and write the outcome.
Callers use the names re-exported here, never the private modules.
"""

from __future__ import annotations

from digest.store._engine import StoreError, database_error, ensure_schema, masked_database_url, open_engine
from digest.store._fetch_runs import fetch_runs, finish_fetch_run, load_validators, save_validators, start_fetch_run
from digest.store._outbox import (
    NewDelivery,
    NewItem,
    Outgoing,
    SendOutcome,
    claim_pending,
    delete_deliveries,
    delivered_paper_ids,
    deliveries_on,
    due_count,
    history,
    insert_deliveries,
    last_sent_at,
    record_outcomes,
    release_claims,
    renew_claims,
)
from digest.store._papers import (
    UpsertCounts,
    count_papers,
    count_papers_seen_since,
    paper_batches,
    papers_seen_since,
    sightings_of,
    upsert_records,
)
from digest.store._sql import (
    batched,
    delivery_t,
    item_t,
    key_t,
    meta_t,
    paper_t,
    run_t,
    sighting_t,
    state_t,
)

__all__ = [
    "NewDelivery",
    "NewItem",
    "Outgoing",
    "SendOutcome",
    "StoreError",
    "UpsertCounts",
    "batched",
    "claim_pending",
    "count_papers",
    "count_papers_seen_since",
    "database_error",
    "delete_deliveries",
    "delivered_paper_ids",
    "deliveries_on",
    "delivery_t",
    "due_count",
    "ensure_schema",
    "fetch_runs",
    "finish_fetch_run",
    "history",
    "insert_deliveries",
    "item_t",
    "key_t",
    "last_sent_at",
    "load_validators",
    "masked_database_url",
    "meta_t",
    "open_engine",
    "paper_batches",
    "paper_t",
    "papers_seen_since",
    "record_outcomes",
    "release_claims",
    "renew_claims",
    "run_t",
    "save_validators",
    "sighting_t",
    "sightings_of",
    "start_fetch_run",
    "state_t",
    "upsert_records",
]
