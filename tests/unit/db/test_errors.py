"""Which driver errors mean "the database is not there", and which "retry the transaction"
(db/errors.py), by their classes."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import exc as sa_exc

from bannertrack.db.errors import is_transient, is_unavailable, map_db_errors
from bannertrack.errors import DatabaseUnavailableError, TransientError


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


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.DeadlockDetectedError("deadlock detected"),
        asyncpg.exceptions.SerializationError("could not serialize access"),
    ],
)
def test_a_transaction_cancelled_for_another_is_transient_not_an_outage(
    exc: Exception,
) -> None:
    # How a click batch that lost a deadlock reached the click writer, bare (pg_bulk)...
    assert is_transient(exc) and not is_unavailable(exc)
    with pytest.raises(TransientError), map_db_errors():
        raise exc
    # ...and wrapped by SQLAlchemy, its adapter's error caused by asyncpg's.
    adapted = Exception(str(exc))
    adapted.__cause__ = exc
    wrapped = sa_exc.DBAPIError("UPDATE ...", None, adapted)
    assert is_transient(wrapped) and not is_unavailable(wrapped)
    with pytest.raises(TransientError) as raised, map_db_errors():
        raise wrapped
    assert raised.value.status == 503 and raised.value.code == "transient"
