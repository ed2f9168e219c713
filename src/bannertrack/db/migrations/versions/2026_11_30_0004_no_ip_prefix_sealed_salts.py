"""no IP prefix, sealed visitor salts

With the day's salt, the /24 prefix and the user agent in one database, an address was
256 guesses away. This revision drops ``clicks.ip_prefix`` and replaces the plain salts
with sealed ones (``salt_key.py``): the day's plain salt is deleted here, so visitor keys
of the upgrade day before and after it do not match (a visitor's repeat across the
upgrade counts as valid once more); every count stays as it was.

On SQLite ``secure_delete`` is on while the old table and the salt rows are dropped, so
their bytes are overwritten in the file rather than left in free pages. On PostgreSQL a
dropped column's values stay in the table's pages until rows are rewritten: run
``VACUUM FULL clicks`` after the upgrade (docs/operations.md).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _clicks_sequence() -> int | None:
    """SQLite's AUTOINCREMENT high-water mark: a recreated table must not reuse ids."""
    if not _sqlite():
        return None
    row = op.get_bind().execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'clicks'"))
    seq = row.scalar()
    return None if seq is None else int(seq)


def _restore_sequence(seq: int | None) -> None:
    if seq is not None:
        update = "UPDATE sqlite_sequence SET seq = max(seq, :seq) WHERE name = 'clicks'"
        op.execute(sa.text(update).bindparams(seq=seq))


def upgrade() -> None:
    if _sqlite():
        op.execute("PRAGMA secure_delete = ON")
    seq = _clicks_sequence()
    with op.batch_alter_table("clicks", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("ip_prefix")
    _restore_sequence(seq)
    op.drop_table("visitor_salts")  # the plain salt of today goes with it
    op.create_table(
        "visitor_salts",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("sealed", sa.LargeBinary(32), nullable=False),
        sa.Column("key_check", sa.LargeBinary(8), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("visitor_salts")
    op.create_table(
        "visitor_salts",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
    )
    seq = _clicks_sequence()
    with op.batch_alter_table("clicks", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("ip_prefix", sa.String(64), nullable=True))
    _restore_sequence(seq)
