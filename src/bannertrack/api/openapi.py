"""The served OpenAPI document says exactly what the server does.

A client generated from ``/schema/openapi.json`` must handle every answer the server
gives, so the document is finished in ways Litestar does not do by itself. Here, what
each handler declares and how the document is served:

- every error status a route can answer is declared with the real body
  ``{"error": {"code", "message"}}`` (``errors(...)`` on each handler), replacing
  Litestar's own ``{status_code, detail, extra}``, which the service never sends;
- the admin and ingest tokens are a bearer security scheme, applied per operation;
- operation ids read as method names (``get_banner_stats``, ``create_banner``), so a
  generated client's functions and modules are named for what they do.

What schema generation gets wrong for us is fixed after it, in ``openapi_finish.py``.

The browsable reference at ``/schema`` is Swagger UI served from the ``swagger-ui-py``
package's files, so it works with no network (no CDN, no ``@latest``).
"""

from __future__ import annotations

from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components,
    Example,
    SecurityScheme,
)
from litestar.router import Router
from litestar.static_files import create_static_files_router

from bannertrack.api.errors import ERRORS, ErrorBody, error

ADMIN_SCHEME = "AdminToken"
INGEST_SCHEME = "IngestToken"
ADMIN: list[dict[str, list[str]]] = [{ADMIN_SCHEME: []}]
"""``security=ADMIN`` on a handler: needs ``Authorization: Bearer <admin token>``."""
INGEST: list[dict[str, list[str]]] = [{INGEST_SCHEME: []}, {ADMIN_SCHEME: []}]
"""``security=INGEST``: the ingest token or the admin token."""

_STATIC = "/schema/static"
_SWAGGER_FILES = Path(str(resources.files("swagger_ui") / "static"))


def errors(*statuses: int) -> dict[int, ResponseSpec]:
    """The error answers of one route, each with the service's real error body."""
    out = {}
    for status in statuses:
        known = ERRORS[status]
        example = error(known.example_code or known.code, known.example)
        out[status] = ResponseSpec(
            data_container=ErrorBody,
            description=known.meaning,
            generate_examples=False,
            examples=[
                Example(summary=HTTPStatus(status).phrase, value=msgspec.to_builtins(example))
            ],
        )
    return out


# Operation ids by handler name, where the name alone would not read as a method call.
_OPERATION_IDS = {
    "click_stats": "get_banner_stats",
    "banner_with_stats": "get_banner_with_stats",
    "click_series": "get_click_series",
    "top_banners": "get_top_banners",
    "stats": "get_cache_stats",
    "clear": "clear_cache",
    "warm": "warm_cache",
    "banner_breakdown": "get_banner_breakdown",
    "overview_breakdown": "get_breakdown",
    "all_totals": "get_totals",
    "conversion_totals": "get_conversion_totals",
    "banner_totals": "get_banner_totals",
    "all_traffic": "get_traffic",
    "banner_traffic": "get_banner_traffic",
    "top_in_range": "get_top_in_range",
    "impression_pixel": "get_impression_pixel",
    "placement_banners": "get_placement_banners",
    "placement_stats": "get_placement_stats",
    "healthz": "get_health",
    "metrics": "get_metrics",
}


def operation_id(handler: Any, method: Any, _path: Any) -> str:
    """``get_banner_stats``: the handler's name, or the name above; HEAD gets ``_head``.

    A handler added later without an entry here is named by its function, which the
    code's own conventions already make a verb (``create_banner``, ``list_banners``).
    """
    name = getattr(handler, "handler_name", "") or str(handler)
    name = _OPERATION_IDS.get(name, name)
    return f"{name}_head" if str(method).upper().endswith("HEAD") else name


def openapi_config(version: str) -> OpenAPIConfig:
    return OpenAPIConfig(
        operation_id_creator=operation_id,
        title="bannertrack",
        version=version,
        description=(
            "Banner click tracking with a fast, correct in-memory cache. Every error is "
            '`{"error": {"code", "message"}}`; admin operations need '
            "`Authorization: Bearer <BANNERTRACK_ADMIN_TOKEN>`."
        ),
        path="/schema",
        components=Components(
            security_schemes={
                ADMIN_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="BANNERTRACK_ADMIN_TOKEN: banner writes, cache management, "
                    "CSV export.",
                ),
                INGEST_SCHEME: SecurityScheme(
                    type="http",
                    scheme="bearer",
                    description="BANNERTRACK_INGEST_TOKEN (or the admin token): "
                    "server-to-server click and conversion reports.",
                ),
            }
        ),
        render_plugins=[
            SwaggerRenderPlugin(
                path="/",
                js_url=f"{_STATIC}/swagger-ui-bundle.js",
                css_url=f"{_STATIC}/swagger-ui.css",
                standalone_preset_js_url=f"{_STATIC}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{_STATIC}/favicon-32x32.png'>",
            )
        ],
    )


def static_files() -> Router:
    """Swagger UI's own files, from the installed package: ``/schema`` needs no network."""
    return create_static_files_router(
        path=_STATIC, directories=[_SWAGGER_FILES], include_in_schema=False
    )
