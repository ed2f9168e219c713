"""Every error leaves the service as ``{"error": {"code", "message"}}``; never a traceback.

Our own exception tree (``bannertrack.errors``) and Litestar's HTTP exceptions are mapped
here and nowhere else: ``ERRORS`` is the one table of status -> code (OpenAPI documents
from it too), and ``error`` the one builder of the body. A browser asking for a page gets
the dashboard's HTML page instead (``dashboard.error_page``): a 404 with a way back, or
the sign-in.
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple, get_args

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from bannertrack.caching.keys import Namespace
from bannertrack.dashboard import error_page, wants_page
from bannertrack.errors import BannertrackError, UnavailableError
from bannertrack.logs import RateLimitedLog
from bannertrack.models import BreakdownCount, CountKind, Dimension, Interval

log = logging.getLogger("bannertrack.api")
# An outage fails every request alike: one warning per interval and kind, with a count.
faults = RateLimitedLog(log)


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    code: str
    message: str


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """What every 4xx and 5xx answer of the service carries."""

    error: ErrorDetail


def error(code: str, message: str) -> ErrorBody:
    """The one way an error body is built: for Litestar, the link's fast path and OpenAPI."""
    return ErrorBody(error=ErrorDetail(code=code, message=message))


class ErrorStatus(NamedTuple):
    code: str  # what a Litestar HTTP exception of this status answers with
    meaning: str  # what the status means here (OpenAPI)
    example: str  # an example message (OpenAPI)
    # The code of the example when the service's own errors name it more precisely.
    example_code: str | None = None


ERRORS: dict[int, ErrorStatus] = {
    400: ErrorStatus(
        "invalid_input", "The request is malformed or a value is out of range.", "limit: ..."
    ),
    401: ErrorStatus(
        "unauthorized",
        "The bearer token is missing or wrong (answered with WWW-Authenticate: Bearer).",
        "missing or wrong admin token",
    ),
    403: ErrorStatus(
        "forbidden",
        "Refused: the server has no token configured for this operation.",
        "admin endpoints are disabled: set BANNERTRACK_ADMIN_TOKEN on the server",
    ),
    404: ErrorStatus(
        "not_found",
        "No such banner, or no click with this click_id (or no such path).",
        "banner 7 not found",
    ),
    405: ErrorStatus(
        "method_not_allowed", "The path does not take this method.", "Method Not Allowed"
    ),
    408: ErrorStatus("request_timeout", "The request was not received in time.", "Request Timeout"),
    409: ErrorStatus(
        "conflict",
        "Valid, but not possible in this state: the cache is switched off (cache_disabled), "
        "or a banner's stored target cannot be a redirect (invalid_target).",
        "the cache is switched off (BANNERTRACK_CACHE_ENABLED=false)",
        "cache_disabled",
    ),
    413: ErrorStatus(
        "payload_too_large", "The request body is larger than the server takes.", "too large"
    ),
    415: ErrorStatus(
        "unsupported_media_type", "The body is not of a type the route takes.", "Unsupported"
    ),
    422: ErrorStatus(
        "outside_window",
        "The conversion cannot be credited to its click: the click is older than "
        "BANNERTRACK_CONVERSION_WINDOW_DAYS before it, or the conversion is dated before it.",
        "the click is older than the conversion window (30 days) allows",
    ),
    429: ErrorStatus("too_many_requests", "Too many requests; retry later.", "Too Many Requests"),
    503: ErrorStatus(
        "unavailable",
        "A dependency cannot answer now (database down, click queue full, shutting down, "
        "a write the database kept cancelling); "
        "retry after the Retry-After header's seconds.",
        "database unavailable: OperationalError",
        "database_unavailable",
    ),
}
"""status -> what the service answers with it: the one table of error codes."""


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response[ErrorBody]:
    return Response(
        error(code, message),
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


# The parameters that take one of a set, by name: a wrong value's error lists the set.
CHOICES: dict[str, tuple[str, ...]] = {
    "by": get_args(Dimension),
    "count": get_args(CountKind),
    "interval": get_args(Interval),
    "namespace": get_args(Namespace),
}


def error_body(code: str, message: str) -> bytes:
    return msgspec.json.encode(error(code, message))


# The breakdowns' count also takes "conversions" (the others count clicks only).
BREAKDOWN_COUNTS: tuple[str, ...] = get_args(BreakdownCount)


def _http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    message = exc.detail
    if wants_page(request) and exc.status_code < 500:
        return error_page(request, exc.status_code, message, dict(exc.headers or {}))
    if isinstance(exc, ValidationException) and exc.extra:
        details = exc.extra if isinstance(exc.extra, list) else [exc.extra]
        parts = []
        for d in details:
            if isinstance(d, dict):
                where = d.get("key") or d.get("source") or ""
                said = str(d.get("message", ""))
                if said.startswith("Invalid enum value") and where in CHOICES:
                    choices = CHOICES[where]
                    if where == "count" and request.url.path.endswith("/breakdown"):
                        choices = BREAKDOWN_COUNTS
                    said += f" (one of: {', '.join(choices)})"
                parts.append(f"{where}: {said}".strip(": "))
        if parts:
            message = f"{exc.detail}: " + "; ".join(parts)
    known = ERRORS.get(exc.status_code)
    code = known.code if known else "error"
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


def _ours_or_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    status, code, message, headers = error_parts(exc)
    if wants_page(request) and status < 500:
        return error_page(request, status, message, headers)
    return error_response(status, code, message, headers or None)


exception_handlers: ExceptionHandlersMap = {
    BannertrackError: _ours_or_unexpected,
    HTTPException: _http,
    Exception: _ours_or_unexpected,
}


# --- visitors' pages ---------------------------------------------------------------------
# A person who clicked a banner (``/c/{id}``) or whose page shows a placement
# (``/p/{id}``) is no API client: a browser that asks for HTML gets a small page, not
# JSON. Same status and headers (Retry-After), same logging; only the body differs.

_VISITOR_TITLES = {
    404: "This link leads nowhere",
    409: "This link cannot be followed",
    503: "This link is not available right now",
}
_PAGE = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1">'
    "<title>{title}</title><style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32em;"
    "margin:4em auto;padding:0 1em;color:#222}}h1{{font-size:1.4em}}p{{color:#555}}</style>"
    "</head><body><h1>{title}</h1><p>{hint}</p></body></html>"
)


def wants_html(headers: Any) -> bool:
    """Whether raw ASGI headers say the client takes HTML (a browser navigating)."""
    for name, value in headers:
        if name == b"accept":
            return b"text/html" in value
    return False


def visitor_page(status: int) -> bytes:
    """The page a browser gets for an error on a visitor's request; no detail leaks."""
    title = _VISITOR_TITLES.get(status, "Something went wrong")
    hint = (
        "Please try again in a moment."
        if status >= 500
        else "The banner you followed may have been removed."
    )
    return _PAGE.format(title=title, hint=hint).encode()


def visitor_error_parts(scope: Any, exc: Exception) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, raw headers and body of an error on a visitor's request: HTML for a
    browser, the service's JSON error for anyone else."""
    status, code, message, extra = error_parts(exc)
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    if wants_html(scope["headers"]):
        body = visitor_page(status)
        content_type = b"text/html; charset=utf-8"
    else:
        body = error_body(code, message)
        content_type = b"application/json"
    headers += [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    return status, headers, body


def _visitor(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if not wants_html(request.scope["headers"]):
        if isinstance(exc, HTTPException):
            return _http(request, exc)
        return _ours_or_unexpected(request, exc)
    if isinstance(exc, HTTPException):
        status, headers = exc.status_code, dict(exc.headers or {})
    else:
        status, _, _, headers = error_parts(exc)
    return Response(
        visitor_page(status),
        status_code=status,
        headers=headers or None,
        media_type="text/html; charset=utf-8",
    )


visitor_exception_handlers: ExceptionHandlersMap = {
    BannertrackError: _visitor,
    HTTPException: _visitor,
    Exception: _visitor,
}
"""For the routes a visitor's browser follows (``/c/{id}``, ``/p/{id}``): an HTML page
to a browser, the JSON error to an API client."""
