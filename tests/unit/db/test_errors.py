"""Which driver errors mean "the database is not there" (db/errors.py), by their classes."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest

from bannertrack.db.errors import is_unavailable, map_db_errors
from bannertrack.errors import DatabaseUnavailableError


def test_a_connection_left_mid_protocol_by_a_shutdown_is_unavailable() -> None:
    # The message asyncpg gave a click batch the moment PostgreSQL stopped (outage test,
    # fault "kill"): before this mapping, one visitor got a 500.
    exc = asyncpg.exceptions.InternalClientError(
        "cannot switch to state 12; another operation (2) is in progress"
    )
    assert is_unavailable(exc)
    with pytest.raises(DatabaseUnavailableError), map_db_errors():
        raise exc


def test_a_query_error_stays_what_it_is() -> None:
    exc = asyncpg.exceptions.UndefinedTableError('relation "nope" does not exist')
    assert not is_unavailable(exc)
    with pytest.raises(asyncpg.exceptions.UndefinedTableError), map_db_errors():
        raise exc
