"""The HTTP layer sees only the protocols: no module under ``bannertrack/api/`` imports
the database adapter or the concrete cached repository (docs/architecture.md).

Read from the source with ``ast``, so an import inside a function or under
``TYPE_CHECKING`` counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import bannertrack

PACKAGE = Path(bannertrack.__file__).parent
FORBIDDEN_IN_API = ("bannertrack.db", "bannertrack.caching.cached_repository")


def _resolve(module: str, node: ast.ImportFrom) -> str:
    """The absolute name ``from ... import`` reads, for a file of package ``module``."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".")[: -node.level]
    return ".".join([*base, node.module] if node.module else base)


def imported_names(source: str, module: str) -> set[str]:
    """Every module a source imports, and ``pkg.name`` for each ``from pkg import name``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            origin = _resolve(module, node)
            names.add(origin)
            names.update(f"{origin}.{alias.name}" for alias in node.names)
    return names


def violations(source: str, module: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        name
        for name in imported_names(source, module)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


def _api_modules() -> list[tuple[str, Path]]:
    return [
        (f"bannertrack.api.{path.stem}", path) for path in sorted((PACKAGE / "api").glob("*.py"))
    ]


def test_the_api_package_is_found() -> None:
    # Guards the test below against passing on an empty list.
    assert {"bannertrack.api.app", "bannertrack.api.banners"} <= {m for m, _ in _api_modules()}


@pytest.mark.parametrize(("module", "path"), _api_modules(), ids=lambda v: str(v))
def test_api_modules_import_neither_db_nor_the_cached_repository(module: str, path: Path) -> None:
    assert violations(path.read_text(), module, FORBIDDEN_IN_API) == []


@pytest.mark.parametrize(
    "source",
    [
        "import bannertrack.db.repository",
        "from bannertrack.db.repository import SqlRepository",
        "from bannertrack.db import stats_queries",
        "from bannertrack import db",
        "from bannertrack.caching import cached_repository",
        "from bannertrack.caching.cached_repository import CachedRepository",
        "from ..db.repository import SqlRepository",
        "from ..caching import cached_repository",
        "def f():\n    from bannertrack.db.stats_queries import series_points",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import bannertrack.db",
    ],
)
def test_the_checker_catches_each_form_of_a_violation(source: str) -> None:
    assert violations(source, "bannertrack.api.banners", FORBIDDEN_IN_API) != []


@pytest.mark.parametrize(
    "source",
    [
        "from bannertrack.repository import Repository",
        "from bannertrack.dbx import x",
        "from bannertrack.api.params import BannerId",
        "from . import params",
        "import bannertrack.cached_repository_docs",
    ],
)
def test_the_checker_lets_allowed_imports_pass(source: str) -> None:
    assert violations(source, "bannertrack.api.banners", FORBIDDEN_IN_API) == []


def _private_cache_names(source: str, module: str) -> list[str]:
    return sorted(
        name for name in imported_names(source, module) if name.startswith("bannertrack.cache._")
    )


def test_invalidation_uses_only_the_public_names_of_the_cache() -> None:
    modules = sorted((PACKAGE / "caching" / "bus").glob("*.py"))
    assert len(modules) >= 3
    for path in modules:
        module = f"bannertrack.caching.bus.{path.stem}"
        assert _private_cache_names(path.read_text(), module) == [], module


def test_the_private_name_check_catches_one() -> None:
    source = "from bannertrack.cache._redis import RedisTier"
    assert _private_cache_names(source, "bannertrack.caching.bus._redis") != []
