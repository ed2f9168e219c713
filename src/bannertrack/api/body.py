"""The request class of the app: a JSON body nested too deeply is a client error.

msgspec decodes a body of unknown shape (Litestar reads it before converting it to the
handler's type) with a fixed nesting limit and raises ``RecursionError`` past it; left
alone that is a 500 with a traceback in the log for one request of ``[[[[...``.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException


class BannertrackRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise ClientException("request body: JSON nested too deeply") from None
