"""Message bytes as stored: zstd frames compressed against a dictionary trained on the planning run's own digests.

Digests of one day share nearly everything but their order: the layout, its inlined styles and the day's
papers. A 64 KB dictionary trained on a run's first 125 digests makes each of the rest 3.6 KB instead of
9.6 KB with zlib level 1 (a 53 KB digest), in a third of the time (zstd level 3: 76 µs against 220 µs;
`benchmarks/compression.py`). Compose workers each train their own on their first batch. Each frame names
its dictionary, which is kept in
`message_dict` while a stored message may still need it. Older rows hold zlib streams; both read back the
same way (`message_bytes`).
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zstandard
from sqlalchemy import Connection, Select, and_, delete, func, insert, select, update

from digest.models import DeliveryStatus
from digest.store._sql import delivery_t, dictionary_t

LEVEL = 3
DICTIONARY_BYTES = 64_000
TRAIN_MIN = 50  # digests: fewer train a dictionary that is worse than none (and zstd may refuse to)
TRAIN_MAX = 200  # more cost training time (0.3 s for 200 digests) without making messages smaller
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


@dataclass(slots=True)
class Packer:
    """Compresses one run's messages: against `dictionary` (its id is in every frame) or without one."""

    dictionary: zstandard.ZstdCompressionDict | None
    _compressor: zstandard.ZstdCompressor | None = None

    def pack(self, message: bytes) -> bytes:
        if self._compressor is None:
            if self.dictionary is not None:
                self.dictionary.precompute_compress(level=LEVEL)
            self._compressor = zstandard.ZstdCompressor(level=LEVEL, dict_data=self.dictionary, write_checksum=True)
        return self._compressor.compress(message)


def trained_packer(samples: Sequence[bytes], fallback: bytes | None = None) -> Packer:
    """A packer against a dictionary trained on `samples` (a run's first digests) when there are enough, else
    against `fallback` (a stored dictionary's bytes), else none. Pure: `keep_dictionary` stores what it used."""
    if len(samples) >= TRAIN_MIN:
        try:
            return Packer(zstandard.train_dictionary(DICTIONARY_BYTES, list(samples[:TRAIN_MAX])))
        except zstandard.ZstdError:
            pass  # too little or too uniform to learn from: the fallback serves
    return Packer(zstandard.ZstdCompressionDict(fallback) if fallback else None)


def newest_dictionary(conn: Connection) -> bytes | None:
    """The most recently trained dictionary's bytes, for a run with too few digests to train its own."""
    return conn.execute(_newest(dictionary_t.c.data)).scalar()


def _newest(column: Any) -> Select[Any]:
    t = dictionary_t
    return select(column).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(1)


def keep_dictionary(conn: Connection, data: bytes, now: dt.datetime) -> None:
    """Store a dictionary messages are compressed against (or mark a stored one as used `now`), in the same
    transaction as those messages: retention keeps it while they may need it (`drop_unused_dictionaries`)."""
    t = dictionary_t
    dict_id = zstandard.ZstdCompressionDict(data).dict_id()
    if conn.execute(select(t.c.last_used_at).where(t.c.id == dict_id)).first() is None:
        conn.execute(insert(t).values(id=dict_id, data=data, created_at=now, last_used_at=now))
    else:
        conn.execute(update(t).where(t.c.id == dict_id, t.c.last_used_at < now).values(last_used_at=now))


def message_packer(conn: Connection, now: dt.datetime, samples: Sequence[bytes]) -> Packer:
    """The packer for a run's messages (`trained_packer`, the newest stored dictionary its fallback), its
    dictionary kept."""
    packer = trained_packer(samples)
    if packer.dictionary is None:
        packer = trained_packer((), newest_dictionary(conn))
    if packer.dictionary is not None:
        keep_dictionary(conn, packer.dictionary.as_bytes(), now)
    return packer


def message_bytes(stored: bytes | None, conn: Connection | None = None) -> bytes:
    """The exact message bytes from what `delivery_message.data` holds (b"" for none): a zstd frame, read
    with the dictionary it names (looked up through `conn`), or an older row's zlib stream."""
    if not stored:
        return b""
    if not stored.startswith(_ZSTD_MAGIC):
        return zlib.decompress(stored)
    dict_id = zstandard.get_frame_parameters(stored).dict_id
    if not dict_id:
        return zstandard.ZstdDecompressor().decompress(stored)
    decompressor = _decompressors.get(dict_id)
    if decompressor is None:
        data = None
        if conn is not None:
            data = conn.execute(select(dictionary_t.c.data).where(dictionary_t.c.id == dict_id)).scalar()
        if data is None:
            raise LookupError(f"message compressed with dictionary {dict_id}, which is not stored")
        decompressor = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(data))
        if len(_decompressors) >= _DECOMPRESSORS_KEPT:
            _decompressors.clear()
        _decompressors[dict_id] = decompressor
    return decompressor.decompress(stored)


# a dictionary's id is a hash of its content, so one read serves every later message that names it
_decompressors: dict[int, zstandard.ZstdDecompressor] = {}
_DECOMPRESSORS_KEPT = 64


def drop_unused_dictionaries(conn: Connection, before: dt.datetime) -> int:
    """Delete dictionaries no stored message can need, once retention has dropped the bytes of digests done with
    before `before`: a message is compressed when its digest is stored, so a dictionary last used before then and
    before the oldest digest still waiting to be sent is used by none. The newest one stays for small runs."""
    t, d = dictionary_t, delivery_t
    newest = conn.execute(_newest(t.c.id)).scalar()
    if newest is None:
        return 0
    waiting = conn.execute(
        select(func.min(d.c.created_at)).where(d.c.status == DeliveryStatus.pending.value)
    ).scalar_one()
    limit = min(before, waiting) if waiting is not None else before
    return conn.execute(delete(t).where(and_(t.c.last_used_at < limit, t.c.id != newest))).rowcount
