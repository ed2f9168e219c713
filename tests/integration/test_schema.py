"""The migrations build exactly the schema of ``db/tables.py``, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from bannertrack.db.engine import create_engine
from bannertrack.db.migrate import alembic_config, upgrade
from bannertrack.db.repository import SqlRepository
from bannertrack.db.tables import metadata
from bannertrack.models import BannerCreate, ClickFacts, ClickIn


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


def _columns(conn: Connection, table: str) -> set[str]:
    return {col["name"] for col in inspect(conn).get_columns(table)}


def _downgrade(conn: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.downgrade(cfg, revision)


async def test_migrations_match_the_tables_and_0004_downgrades_and_upgrades_again(
    unmigrated_url: str,
) -> None:
    engine = create_engine(unmigrated_url)
    try:
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade, "0003")
        async with engine.connect() as conn:
            columns = await conn.run_sync(lambda c: _columns(c, "clicks"))
            salts = await conn.run_sync(lambda c: _columns(c, "visitor_salts"))
        assert "ip_prefix" in columns and salts == {"day", "salt"}
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()


def _foreign_keys(conn: Connection) -> dict[str, list[str]]:
    found = inspect(conn)
    return {t: [k["referred_table"] for k in found.get_foreign_keys(t)] for t in CLICK_TABLE_NAMES}


def _rows(conn: Connection) -> dict[str, int]:
    return {
        t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
        for t in (*CLICK_TABLE_NAMES, "banner_totals")
    }


CLICK_TABLE_NAMES = ("clicks", "visitor_clicks", "click_minutes", "click_breakdowns")


async def test_0007_drops_the_click_tables_foreign_keys_and_keeps_their_rows(
    unmigrated_url: str,
) -> None:
    """Down to 0006 and up again with rows in every table: the keys come and go, every
    row stays, a row whose banner is gone is deleted on the way down, and click ids go
    on from the largest ever handed out."""
    now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    engine = create_engine(unmigrated_url)
    repo = SqlRepository(engine)
    try:
        await upgrade(engine)
        banner = await repo.create_banner(
            BannerCreate(
                name="b", image_url="https://a.example/i.png", target_url="https://a.example/"
            )
        )
        facts = ClickFacts(country="DE", device="desktop")
        clicks = [
            ClickIn(banner_id=banner.id, occurred_at=now, visitor=f"v{i}", facts=facts)
            for i in range(3)
        ]
        first = await repo.record_clicks(clicks)
        async with engine.begin() as conn:
            await conn.execute(  # a row whose banner is gone: only possible without the key
                text(
                    "INSERT INTO clicks (banner_id, occurred_at, bot, repeat)"
                    " VALUES (999, :t, false, false)"
                ),
                {"t": now.replace(tzinfo=None) if engine.dialect.name == "sqlite" else now},
            )
        async with engine.connect() as conn:
            assert await conn.run_sync(_foreign_keys) == {t: [] for t in CLICK_TABLE_NAMES}
            rows = await conn.run_sync(_rows)
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade, "0006")
        async with engine.connect() as conn:
            assert await conn.run_sync(_foreign_keys) == {t: ["banners"] for t in CLICK_TABLE_NAMES}
            assert await conn.run_sync(_rows) == {**rows, "clicks": rows["clicks"] - 1}
        await upgrade(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
            assert await conn.run_sync(_rows) == {**rows, "clicks": rows["clicks"] - 1}
        later = await repo.record_clicks(
            [ClickIn(banner_id=banner.id, occurred_at=now, visitor="w")]
        )
        assert later[0] is not None and first[-1] is not None
        assert later[0].id > first[-1].id + 1  # after the deleted row's id too
    finally:
        await repo.close()
