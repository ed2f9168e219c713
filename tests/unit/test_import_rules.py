"""The package's layers, read from the source (docs/architecture.md).

- ``LAYERS``: each top-level part (a folder, or a loose module) has a floor; a part may
  import itself and the parts on lower floors, never a part beside it or above it (so
  ``dashboard/`` never imports ``api/``, and ``clicks/``, ``caching/`` and ``db/`` never
  import each other).
- On top of the floors: ``api/`` never imports the database adapter or the concrete
  cached repository (it sees only the protocols); ``cache/`` imports nothing of
  bannertrack but ``tasks``; a migration imports no bannertrack code at all (frozen).
- No import cycle between modules, not even a type-only one.

Read from the source with ``ast``, so an import inside a function or under
``TYPE_CHECKING`` counts as much as one at the top. Each checker has negative controls
below (sources that must be caught), so none of these tests can pass on an empty check.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
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


# --- floors ------------------------------------------------------------------------------

LAYERS: tuple[frozenset[str], ...] = (
    # the ground: values, errors, background tasks, logging, the database's known state;
    # they import nothing of ours
    frozenset({"errors", "models", "tasks", "logs", "outage"}),
    # settings and UTC time, over errors and values
    frozenset({"config", "timeutil"}),
    # the rules of a time series; conversions' values, rules and CSV (over timeutil)
    frozenset({"series", "conversions"}),
    frozenset({"cache"}),  # the general cache engine
    # the protocols and the metrics (they name cache stats)
    frozenset({"repository", "metrics"}),
    frozenset({"clicks", "caching", "db"}),  # a click's path, the caching layer, the database
    frozenset({"placements"}),  # the serve's choice, caps and signed click URLs
    # the one place the service is assembled; with how it names itself (public_url, over
    # clicks.privacy) and the workers' shared figures (workers)
    frozenset({"bootstrap"}),
    frozenset({"dashboard"}),
    frozenset({"api"}),  # the web surface; mounts the dashboard
    frozenset({"cli"}),
    frozenset({"__main__"}),
)
FLOOR = {part: floor for floor, parts in enumerate(LAYERS) for part in parts}
EXTRA_RULES: dict[str, tuple[str, ...]] = {
    "api": FORBIDDEN_IN_API,
}
CACHE_MAY_IMPORT = ("bannertrack.cache", "bannertrack.tasks")


def part_of(module: str) -> str:
    """``bannertrack.db.tables`` -> ``db``; ``bannertrack.models`` -> ``models``."""
    return module.split(".")[1]


def layer_violations(sources: Mapping[str, str]) -> list[str]:
    """``importer -> imported`` for every import that breaks a floor or an extra rule."""
    found = []
    for module, source in sorted(sources.items()):
        if module == "bannertrack":  # the package's own face
            continue
        mine = part_of(module)
        names = imported_names(source, module)
        for name in sorted(names):
            if not name.startswith("bannertrack."):
                continue
            theirs = part_of(name)
            if theirs == mine or theirs not in FLOOR:
                continue
            if FLOOR[theirs] >= FLOOR[mine]:
                found.append(f"{module} -> {name}")
        found += [
            f"{module} -> {name}" for name in violations(source, module, EXTRA_RULES.get(mine, ()))
        ]
        if mine == "cache":
            found += [
                f"{module} -> {name}"
                for name in sorted(names)
                if name.startswith("bannertrack.")
                and not any(name == a or name.startswith(a + ".") for a in CACHE_MAY_IMPORT)
            ]
    return sorted(set(found))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_sources() -> dict[str, str]:
    """Every module of the package (migrations apart: alembic loads them by path)."""
    return {
        _module_name(path): path.read_text()
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.parts
    }


def test_every_part_of_the_package_has_a_floor() -> None:
    parts = {part_of(m) for m in package_sources() if m != "bannertrack"}
    assert parts - set(FLOOR) == set(), "give the new part a floor in LAYERS"
    assert len(parts) >= 15  # guards the tests below against an empty walk


def test_at_most_ten_loose_modules_at_the_top() -> None:
    # A newcomer sees the architecture in the folders; a new module goes in the folder its
    # name announces (issue 25).
    loose = [p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")]
    assert 3 <= len(loose) <= 10, sorted(loose)


def test_no_part_imports_one_beside_or_above_it() -> None:
    assert layer_violations(package_sources()) == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("bannertrack.dashboard.views", "from bannertrack.api.params import BannerId"),
        ("bannertrack.dashboard.views", "from bannertrack import api"),
        ("bannertrack.repository", "from bannertrack.clicks.salt_key import SealedSalt"),
        ("bannertrack.metrics", "from bannertrack.caching.bus import BusStats"),
        ("bannertrack.db.maintenance", "from bannertrack.clicks.salt_key import SealedSalt"),
        ("bannertrack.clicks.ingest", "from ..db import tables"),
        ("bannertrack.caching.warming", "import bannertrack.bootstrap"),
        ("bannertrack.bootstrap._cache", "def f():\n    from bannertrack.api import app"),
        (
            "bannertrack.models",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from bannertrack.cache import Cache",
        ),
        ("bannertrack.api.banners", "from bannertrack.db.repository import SqlRepository"),
        ("bannertrack.cache._memory", "from bannertrack.models import Banner"),
        ("bannertrack.cache._memory", "from bannertrack.errors import InvalidInputError"),
        ("bannertrack.cli.demo", "import bannertrack.__main__"),
    ],
)
def test_the_layer_check_catches_each_kind_of_violation(module: str, source: str) -> None:
    assert layer_violations({module: source}) != []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("bannertrack.dashboard.views", "from bannertrack.bootstrap.web import BannerId"),
        ("bannertrack.api.app", "from bannertrack.dashboard import dashboard_router"),
        ("bannertrack.db.maintenance", "from bannertrack.models import SealedSalt"),
        ("bannertrack.cache._memory", "from bannertrack.tasks import BackgroundTask"),
        ("bannertrack.cache._memory", "from bannertrack.cache import _loading"),
        ("bannertrack.clicks.ingest", "from . import facts"),
        ("bannertrack.cli.demo", "from bannertrack.db.repository import SqlRepository"),
    ],
)
def test_the_layer_check_lets_allowed_imports_pass(module: str, source: str) -> None:
    assert layer_violations({module: source}) == []


def test_migrations_import_no_bannertrack_code() -> None:
    versions = sorted((PACKAGE / "db" / "migrations" / "versions").glob("*.py"))
    assert len(versions) >= 5
    for path in versions:
        module = f"bannertrack.db.migrations.versions.{path.stem}"
        names = imported_names(path.read_text(), module)
        assert sorted(n for n in names if n.startswith("bannertrack")) == [], path.name


# --- cycles ------------------------------------------------------------------------------


def import_graph(sources: Mapping[str, str]) -> dict[str, set[str]]:
    """module -> the package's modules it imports (``from pkg import mod`` names ``mod``).

    The package a module sits in is not an edge of its own: Python runs an
    ``__init__`` first, but a face that only hands names on is no dependency.
    """
    graph: dict[str, set[str]] = {}
    for module, source in sources.items():
        targets = set()
        for name in imported_names(source, module):
            if name in sources and name != module:
                targets.add(name)
        # ``from pkg import name`` adds both ``pkg`` and ``pkg.name``; keep ``pkg`` only
        # when ``name`` is not a module of its own.
        for name in list(targets):
            if any(other.startswith(name + ".") for other in targets):
                targets.discard(name)
        graph[module] = targets
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_cycle() -> None:
    graph = import_graph(package_sources())
    assert sum(len(t) for t in graph.values()) > 100  # the graph was really read
    assert cycles(graph) == []


def test_the_cycle_check_catches_a_type_only_cycle() -> None:
    sources = {
        "bannertrack.cache._sieve": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from bannertrack.cache._stats import Namespace"
        ),
        "bannertrack.cache._stats": "from bannertrack.cache._sieve import Entry",
        "bannertrack.cache._other": "from bannertrack.cache import _stats",
    }
    assert cycles(import_graph(sources)) == [
        ["bannertrack.cache._sieve", "bannertrack.cache._stats"]
    ]


def test_the_cycle_check_catches_a_longer_cycle_through_a_function_body() -> None:
    sources = {
        "bannertrack.a": "from bannertrack import b",
        "bannertrack.b": "import bannertrack.c",
        "bannertrack.c": "def f():\n    from bannertrack.a import x",
    }
    assert cycles(import_graph(sources)) == [["bannertrack.a", "bannertrack.b", "bannertrack.c"]]


def test_the_cycle_check_lets_a_chain_pass() -> None:
    sources = {
        "bannertrack.cache": "from bannertrack.cache._memory import MemoryCache",
        "bannertrack.cache._memory": "from bannertrack.cache import _loading",
        "bannertrack.cache._loading": "import asyncio",
    }
    assert cycles(import_graph(sources)) == []
