"""Validated request parameters shared by the route modules."""

from __future__ import annotations

from typing import Annotated, Any, cast

from litestar.datastructures import State
from litestar.params import PathParameter

from bannertrack.api.context import AppContext

MAX_ID = 2**63 - 1

BannerId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="Banner id")]


def ctx_of(state: State) -> AppContext:
    return cast(AppContext, cast(Any, state).ctx)
