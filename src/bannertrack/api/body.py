"""The request class of the app: a JSON body nested too deeply is a client error.

msgspec decodes a body of unknown shape (Litestar reads it before converting it to the
handler's type) with a fixed nesting limit and raises ``RecursionError`` past it; left
alone that is a 500 with a traceback in the log for one request of ``[[[[...``.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.exceptions import ClientException, ValidationException
from litestar.handlers.base import BaseRouteHandler


class BannertrackRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise ClientException("request body: JSON nested too deeply") from None


T = TypeVar("T")


async def strict_body(request: Request[Any, Any, Any], struct: type[T]) -> T:
    """The JSON body as ``struct``, decoded strictly: ``0`` is no boolean, ``"5"`` no number.

    Litestar converts request data leniently (it must, for query strings and forms), so
    ``{"active": 0}`` would pass as ``false`` although the OpenAPI document, and any
    client generated from it, says a boolean. Handlers that take a body read it here.
    """
    try:
        return msgspec.convert(await request.json(), struct, strict=True)
    except msgspec.ValidationError as exc:
        raise ValidationException(f"request body: {exc}") from None


async def iso_times(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """``from`` and ``to`` are ISO 8601 date-times, as documented, never a bare number.

    The lenient conversion would read ``to=0.5`` as half a second after the epoch.
    """
    for name in ("from", "to"):
        value = connection.query_params.get(name)
        if value is not None and _NUMBER.fullmatch(value.strip()):
            raise ValidationException(f"{name}: an ISO 8601 date-time, e.g. 2026-11-30T10:00:00Z")


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity|nan)", re.I)
