"""Turn a database URL as users write it into the one SQLAlchemy's async engine needs.

Users write ``sqlite:///x.db`` or ``postgresql://u:p@h/db`` (or the unix-socket form
``postgresql://u@/db?host=/run/dir`` that PostgreSQL tools print); the service picks
its async driver. A URL that already names a driver is honoured as written.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

from bannertrack.errors import InvalidInputError

_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
_ALIASES = {"postgres": "postgresql", "pgsql": "postgresql"}


def async_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except Exception as exc:  # sqlalchemy raises ArgumentError with a terse message
        raise InvalidInputError(f"not a database URL: {raw!r}") from exc
    backend = _ALIASES.get(url.get_backend_name(), url.get_backend_name())
    if backend not in _ASYNC_DRIVERS:
        raise InvalidInputError(f"unsupported database {backend!r}: use sqlite or postgresql")
    if "+" in url.drivername:
        return url.set(drivername=f"{backend}+{url.get_driver_name()}")
    return url.set(drivername=f"{backend}+{_ASYNC_DRIVERS[backend]}")


def sync_url(raw: str) -> URL:
    """The URL Alembic's offline tools and psql-minded humans expect (no async driver)."""
    url = async_url(raw)
    return url.set(drivername=url.get_backend_name())
