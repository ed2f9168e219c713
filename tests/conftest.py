"""Fixtures shared by every test: real SQLite files and a real PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from bannertrack.api.app import create_app
from bannertrack.config import Settings
from bannertrack.db.engine import create_engine
from bannertrack.db.migrate import upgrade
from bannertrack.db.repository import SqlRepository
from tests.support.proxy import TcpProxy
from tests.support.services import (
    PostgresFactory,
    postgres_proxy_target,
    postgres_server,
    via_proxy,
)

if not os.environ.get("XDG_RUNTIME_DIR"):
    # pgserver asks platformdirs for a runtime dir, which warns when none is set.
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="bt-runtime-")
# Servers and apps under test create their salt key file here, not in the user's home.
os.environ.setdefault(
    "BANNERTRACK_SALT_KEY_FILE", os.path.join(tempfile.mkdtemp(prefix="bt-key-"), "salt.key")
)
# ...and their outage spools here (a folder per database inside), not in the user's home.
os.environ.setdefault("BANNERTRACK_SPOOL_DIR", tempfile.mkdtemp(prefix="bt-spool-"))

BACKENDS = ["sqlite", "postgresql"]
_TESTS = Path(__file__).parent
_FOLDER_MARKS = {
    "unit": "unit",
    "integration": "integration",
    "e2e": "e2e",
    "quality": "quality",
}
_FOLDER_ORDER = {"e2e": 0, "integration": 1, "quality": 2, "unit": 3}


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """``-m unit`` runs in one process, whatever addopts' ``-n 2`` says: the unit tests
    take seconds, and a second worker would spend more collecting the whole tree again
    than it saves. (Before pytest-xdist's own hook, which reads these options.)"""
    if config.option.markexpr.strip() == "unit":
        config.option.numprocesses = 0
        config.option.dist = "no"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder (unit / integration / e2e / quality), so ``-m unit``
    runs the fast in-process part alone and ``-m quality`` the linters; a test that
    starts a server process outside tests/e2e says so with its own ``e2e`` mark and gets
    no other.

    Then order the files slowest folder first (e2e, integration, quality, unit; files
    within a folder as collected): xdist hands whole files to its two workers in this
    order (``--no-loadscope-reorder`` in pyproject.toml), so the last files handed out
    are the short unit ones and neither worker idles while the other finishes a long one.
    """
    for item in items:
        folder = item.path.relative_to(_TESTS).parts[0]
        mark = _FOLDER_MARKS.get(folder)
        if mark is not None and item.get_closest_marker("e2e") is None:
            item.add_marker(mark)
    items.sort(key=lambda item: _FOLDER_ORDER.get(item.path.relative_to(_TESTS).parts[0], 9))


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresFactory]:
    with postgres_server() as admin_url:
        factory = PostgresFactory(admin_url)
        try:
            yield factory
        finally:
            factory.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per test process, copied for each test that wants a
    fresh one: a copy is the same bytes the migrations wrote, in a millisecond instead
    of the ~0.2 s of CPU that running every migration again cost each of ~300 tests."""
    path = tmp_path_factory.mktemp("sqlite-template") / "bannertrack.db"
    _migrate_sqlite(f"sqlite:///{path}")
    # The engine is disposed: the last connection checkpointed and removed the WAL, so
    # the one file holds the whole database.
    assert not path.with_name(path.name + "-wal").exists()
    return path


@contextlib.contextmanager
def _fresh_database(backend: str, folder: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database of ``backend`` (SQLite: a copy of the template in
    ``folder``), dropped afterwards."""
    if backend == "sqlite":
        path = folder / "bannertrack.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    factory: PostgresFactory = request.getfixturevalue("postgres")
    url = factory.create()
    try:
        yield url
    finally:
        factory.drop(url)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database of the test's backend."""
    with _fresh_database(backend, tmp_path, request) as url:
        yield url


@pytest.fixture
def unmigrated_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of the test's backend, for migration tests."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    factory: PostgresFactory = request.getfixturevalue("postgres")
    url = factory.create(migrated=False)
    try:
        yield url
    finally:
        factory.drop(url)


def _migrate_sqlite(url: str) -> None:
    from tests.support.services import _in_thread

    async def go() -> None:
        engine = create_engine(url)
        await upgrade(engine)
        await engine.dispose()

    _in_thread(go)


@pytest.fixture
async def sql_repo(database_url: str) -> AsyncIterator[SqlRepository]:
    repo = SqlRepository.from_url(database_url)
    try:
        yield repo
    finally:
        await repo.close()


ADMIN_TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
INGEST_TOKEN = "test-ingest-token"
INGEST = {"Authorization": f"Bearer {INGEST_TOKEN}"}  # servers that report clicks


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    """Tests override this to change settings of the app under test."""
    return {}


def _test_settings(database_url: str, overrides: dict[str, object]) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "ingest_token": INGEST_TOKEN,
        # PostgreSQL's outage spool answers a batch not committed within spool_after (0.2 s)
        # from local disk (202, not 201); on two busy cores a healthy commit can take that
        # long. The spool's own tests set it (tests/integration/test_spool.py).
        "spool_after": 30.0,
    }
    return Settings(**{**values, **overrides})  # type: ignore[arg-type]


@pytest.fixture
async def client(
    database_url: str, settings_overrides: dict[str, object]
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(create_app(_test_settings(database_url, settings_overrides))) as c:
        yield c


@pytest.fixture(scope="module", params=BACKENDS)
def module_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
async def shared_client(
    module_backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """One app and one database per module and backend, for the long parametrized lists of
    refused requests: each case's requests are refused (or only read), so none leaves
    anything another case could see, and none pays ~0.5 s of CPU for an app and a
    database of its own (``client``). A case that must see a fresh database uses ``client``."""
    with _fresh_database(module_backend, tmp_path_factory.mktemp("shared"), request) as url:
        async with AsyncTestClient(create_app(_test_settings(url, {}))) as c:
            yield c


@pytest.fixture
def proxied_url(postgres: PostgresFactory) -> Iterator[tuple[str, TcpProxy]]:
    """A fresh PostgreSQL database reached through a cuttable loopback proxy."""
    url = postgres.create()
    unix, tcp = postgres_proxy_target(url)
    proxy = TcpProxy(target_unix=unix, target=tcp)
    proxy.start()
    try:
        yield via_proxy(url, proxy.port), proxy
    finally:
        proxy.close()
        postgres.drop(url)
