"""A synchronous httpx client over an ASGI app (no server): what the web tests drive the real app with."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx


class AppClient:
    """httpx.AsyncClient on `httpx.ASGITransport`, run on a loop of its own so tests stay plain functions."""

    def __init__(self, app: Any, base_url: str = "http://127.0.0.1:8080") -> None:
        self._runner = asyncio.Runner()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._runner.run(self._client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()
