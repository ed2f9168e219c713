"""Every error leaves the service as ``{"error": {"code", "message"}}``; never a traceback.

Our own exception tree (``bannertrack.errors``) and Litestar's HTTP exceptions are mapped
here and nowhere else.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from bannertrack.errors import BannertrackError, UnavailableError
from bannertrack.logs import RateLimitedLog

log = logging.getLogger("bannertrack.api")
# An outage fails every request alike: one warning per interval and kind, with a count.
faults = RateLimitedLog(log)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "unavailable",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    return Response(
        {"error": {"code": code, "message": message}},
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


ErrorParts = tuple[int, str, str, dict[str, str]]  # status, code, message, headers


def error_parts(exc: Exception) -> ErrorParts:
    """What an error of ours (or an unexpected one) answers, logged as it deserves."""
    if isinstance(exc, UnavailableError):
        faults.warning(f"503:{exc.code}", "answering 503: %s", exc)
        return exc.status, exc.code, str(exc), {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, BannertrackError) and exc.status < 500:
        return exc.status, exc.code, str(exc), {}
    # With its traceback, but once per interval: a flood of one bad request is one line.
    faults.error(f"500:{type(exc).__qualname__}", "unexpected error", exc_info=exc)
    return HTTP_500_INTERNAL_SERVER_ERROR, "internal_error", "internal error", {}


def error_body(code: str, message: str) -> bytes:
    return msgspec.json.encode({"error": {"code": code, "message": message}})


def _http(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    message = exc.detail
    if isinstance(exc, ValidationException) and exc.extra:
        details = exc.extra if isinstance(exc.extra, list) else [exc.extra]
        parts = []
        for d in details:
            if isinstance(d, dict):
                where = d.get("key") or d.get("source") or ""
                parts.append(f"{where}: {d.get('message', '')}".strip(": "))
        if parts:
            message = f"{exc.detail}: " + "; ".join(parts)
    code = "invalid_input" if exc.status_code == 400 else _HTTP_CODES.get(exc.status_code, "error")
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


def _ours_or_unexpected(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    status, code, message, headers = error_parts(exc)
    return error_response(status, code, message, headers or None)


exception_handlers: ExceptionHandlersMap = {
    BannertrackError: _ours_or_unexpected,
    HTTPException: _http,
    Exception: _ours_or_unexpected,
}
