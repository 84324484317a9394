"""`digest serve`: the reader's side of the email, as an ASGI app (Starlette) over the same store.

`create_app` returns the app as a value; `_app` holds the pages, `_guard` the web hygiene every response
gets, `_readers` the config's subscribers as links name them. Callers use the names re-exported here.
"""

from __future__ import annotations

from digest.web._app import LINK_DAYS, create_app
from digest.web._readers import Readers

__all__ = ["LINK_DAYS", "Readers", "create_app"]
