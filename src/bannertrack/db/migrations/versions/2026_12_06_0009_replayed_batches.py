"""replayed_batches: the idempotency keys of spooled batches replayed into the database

A batch written to an instance's local spool while the database was down is replayed in
one transaction that also inserts its key here; a replay that finds its key already
present stored the batch before (a crash came between that commit and the spool's own
delete) and stores nothing. Keys older than 30 days are deleted by the replay itself.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replayed_batches",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("replayed_batches")
