"""Alembic environment: runs on a connection handed in by ``bannertrack.db.migrate``.

The service migrates from inside its own event loop at start-up, so this file never
creates an engine or a loop of its own when a connection is given (Alembic's
"connection sharing" recipe). Run standalone (``alembic upgrade head`` with the
repository's alembic.ini), it builds one from ``BANNERTRACK_DATABASE_URL``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from bannertrack.config import load_settings
from bannertrack.db.engine import create_engine
from bannertrack.db.tables import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _standalone() -> None:
    engine = create_engine(load_settings().database_url)
    async with engine.begin() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    asyncio.run(_standalone())
