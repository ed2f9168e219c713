"""What both web surfaces (``api/`` and ``dashboard/``) take from the assembly.

The app that ``api.app.create_app`` assembles keeps the ``Settings`` in its state under
``SETTINGS``; a guard or a page reads them back with ``settings_of``. ``BannerId`` is the
validated path id and ``Injected`` marks a dependency built once at start-up. They live
here, below both surfaces, so the dashboard never imports the API.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeAlias, TypeVar

from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.params import PathParameter, SkipValidation

from bannertrack.config import Settings

T = TypeVar("T")

SETTINGS = "settings"
"""The key of the app's ``Settings`` in its state."""

MAX_ID = 2**63 - 1
MAX_OFFSET = 2**62

BannerId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="Banner id")]
PlacementId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="Placement id")]

Injected: TypeAlias = NamedDependency[SkipValidation[T]]
"""A dependency of ``api/deps``: built by us once at start-up, so not validated per request."""


def settings_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    settings = connection.app.state.get(SETTINGS)
    if not isinstance(settings, Settings):
        raise RuntimeError("the app was not built by create_app(settings)")
    return settings
