"""Database URLs as users write them become the async URL the engine needs."""

from __future__ import annotations

import pytest

from bannertrack.db.urls import async_url, sync_url
from bannertrack.errors import InvalidInputError


@pytest.mark.parametrize(
    ("raw", "driver", "database"),
    [
        ("sqlite:///bannertrack.db", "sqlite+aiosqlite", "bannertrack.db"),
        ("sqlite:////var/lib/bt/bannertrack.db", "sqlite+aiosqlite", "/var/lib/bt/bannertrack.db"),
        ("sqlite://", "sqlite+aiosqlite", None),
        ("postgresql://bt:secret@db.internal:5432/bt", "postgresql+asyncpg", "bt"),
        ("postgres://bt@db/bt", "postgresql+asyncpg", "bt"),
        ("pgsql://bt@db/bt", "postgresql+asyncpg", "bt"),
        # A driver named explicitly is honoured, whatever it is.
        ("postgresql+asyncpg://bt@db/bt", "postgresql+asyncpg", "bt"),
        ("postgresql+psycopg://bt@db/bt", "postgresql+psycopg", "bt"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite", "x.db"),
    ],
)
def test_forms_users_write(raw: str, driver: str, database: str | None) -> None:
    url = async_url(raw)
    assert (url.drivername, url.database) == (driver, database)


def test_credentials_host_and_port_survive() -> None:
    url = async_url("postgresql://bt:p%40ss@db.internal:6432/bt")
    assert (url.username, url.password, url.host, url.port) == ("bt", "p@ss", "db.internal", 6432)


def test_the_unix_socket_form_keeps_its_host_query() -> None:
    url = async_url("postgresql://bt@/bt?host=/run/postgresql")
    assert url.drivername == "postgresql+asyncpg"
    assert url.host is None and url.query == {"host": "/run/postgresql"}
    assert (url.username, url.database) == ("bt", "bt")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not a url", "not a database URL"),
        ("", "not a database URL"),
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        ("redis://localhost:6379/0", "unsupported database 'redis'"),
    ],
)
def test_what_is_refused_says_why(raw: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        async_url(raw)


@pytest.mark.parametrize(
    ("raw", "driver"),
    [
        ("sqlite:///x.db", "sqlite"),
        ("postgres://bt@db/bt", "postgresql"),
        ("postgresql+asyncpg://bt@db/bt", "postgresql"),
    ],
)
def test_sync_url_names_no_driver(raw: str, driver: str) -> None:
    assert sync_url(raw).drivername == driver
