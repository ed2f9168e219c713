"""click tables without foreign keys

``clicks``, ``visitor_clicks``, ``click_minutes`` and ``click_breakdowns`` lose their
cascading foreign key to ``banners``. On PostgreSQL the key checked every row a click
batch inserted with a query of its own and a lock on the banner row: about a sixth of
PostgreSQL's CPU per batch. A batch locks its banners anyway, and the banner's delete
now clears these tables itself (``SqlRepository.delete_banner``). ``banner_totals`` and
``impression_minutes`` keep theirs.

On PostgreSQL dropping a constraint is a catalogue change. SQLite cannot drop one, so
each table is copied into a new one (Alembic's batch mode), which takes time in
proportion to the rows; ``clicks`` keeps its AUTOINCREMENT high-water mark.

Downgrade deletes the rows whose banner is gone, if any, and puts the keys back.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# Frozen here, not imported: a migration must not change when the service's code does.
_TABLES = ("clicks", "visitor_clicks", "click_minutes", "click_breakdowns")
# SQLite's keys have no name; batch mode names the reflected one by this convention.
_CONVENTION = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _table_kwargs(table: str) -> dict[str, Any]:
    if table == "clicks":
        return {"sqlite_autoincrement": True}
    if table == "click_breakdowns":
        return {"sqlite_with_rowid": False}
    return {}


def _clicks_sequence() -> int | None:
    """SQLite's AUTOINCREMENT high-water mark: a copied table must not reuse ids."""
    row = op.get_bind().execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'clicks'"))
    seq = row.scalar()
    return None if seq is None else int(seq)


def _restore_sequence(seq: int | None) -> None:
    if seq is not None:
        update = "UPDATE sqlite_sequence SET seq = max(seq, :seq) WHERE name = 'clicks'"
        op.execute(sa.text(update).bindparams(seq=seq))


def _foreign_key_names(table: str) -> list[str]:
    keys = sa.inspect(op.get_bind()).get_foreign_keys(table)
    return [k["name"] for k in keys if k["referred_table"] == "banners" and k["name"]]


def upgrade() -> None:
    if not _sqlite():
        for table in _TABLES:
            for name in _foreign_key_names(table):
                op.drop_constraint(name, table, type_="foreignkey")
        return
    seq = _clicks_sequence()
    for table in _TABLES:
        with op.batch_alter_table(
            table,
            naming_convention=_CONVENTION,
            table_kwargs=_table_kwargs(table),
            recreate="always",
        ) as batch:
            batch.drop_constraint(f"fk_{table}_banner_id_banners", type_="foreignkey")
    _restore_sequence(seq)


def downgrade() -> None:
    for table in _TABLES:
        op.execute(
            f"DELETE FROM {table} WHERE NOT EXISTS "
            f"(SELECT 1 FROM banners b WHERE b.id = {table}.banner_id)"
        )
    if not _sqlite():
        for table in _TABLES:
            op.create_foreign_key(
                f"{table}_banner_id_fkey", table, "banners", ["banner_id"], ["id"],
                ondelete="CASCADE",
            )  # fmt: skip
        return
    seq = _clicks_sequence()
    for table in _TABLES:
        with op.batch_alter_table(table, table_kwargs=_table_kwargs(table)) as batch:
            batch.create_foreign_key(
                f"fk_{table}_banner_id_banners", "banners", ["banner_id"], ["id"],
                ondelete="CASCADE",
            )  # fmt: skip
    _restore_sequence(seq)
