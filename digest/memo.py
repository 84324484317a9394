"""A bounded memo for values many digests share (rendered paper pieces, rankings of twin readers)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any


class Memo:
    """A bounded map for rendered pieces that many digests share; when full, the oldest entry goes.

    A plain dict: a lookup is one C call (`get`), which matters at ~50 lookups per digest."""

    __slots__ = ("data", "get", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: dict[Hashable, Any] = {}
        self.get = self.data.get

    def put(self, key: Hashable, value: Any) -> Any:
        data = self.data
        if len(data) >= self.size:
            del data[next(iter(data))]
        data[key] = value
        return value
