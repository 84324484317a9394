"""A bounded memo for values many digests share (rendered paper pieces, rankings of twin readers)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any


class Memo:
    """A bounded map for rendered pieces that many digests share; when full, the oldest entry goes.

    A lookup is one C call (`get`), which matters at ~50 lookups per digest. The entries are kept in an
    `OrderedDict` so that the oldest goes in constant time: taking a plain dict's first key walks past every
    slot deleted since it was last resized, thousands of them in a full memo."""

    __slots__ = ("data", "get", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self.data: OrderedDict[Hashable, Any] = OrderedDict()
        self.get = self.data.get

    def put(self, key: Hashable, value: Any) -> Any:
        data = self.data
        if len(data) >= self.size:
            data.popitem(last=False)
        data[key] = value
        return value
