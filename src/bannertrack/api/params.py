"""Validated request parameters and the marker of injected dependencies."""

from __future__ import annotations

from typing import Annotated, TypeAlias, TypeVar

from litestar.di import NamedDependency
from litestar.params import PathParameter, SkipValidation

T = TypeVar("T")

MAX_ID = 2**63 - 1
MAX_OFFSET = 2**62

BannerId = Annotated[int, PathParameter(ge=1, le=MAX_ID, description="Banner id")]

Injected: TypeAlias = NamedDependency[SkipValidation[T]]
"""A dependency of ``api/deps``: built by us once at start-up, so not validated per request."""
