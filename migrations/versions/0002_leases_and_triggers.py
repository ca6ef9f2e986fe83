"""Leases with fencing, durable trigger generations and the daemon's schedule.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COUNTERS = ("generation", "pass_generation", "fence_token")


def upgrade() -> None:
    with op.batch_alter_table("blogs") as batch:
        for name in _COUNTERS:
            batch.add_column(sa.Column(name, sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("failures", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("next_pass_at_ns", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("last_full_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "leases",
        sa.Column("blog_id", sa.String(length=200), nullable=False),
        sa.Column("holder", sa.Text(), nullable=True),
        sa.Column("token", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ns", sa.BigInteger(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["blog_id"],
            ["blogs.id"],
            name=op.f("fk_leases_blog_id_blogs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("blog_id", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")
    with op.batch_alter_table("blogs") as batch:
        for name in ("last_full_at", "next_pass_at_ns", "failures", *_COUNTERS):
            batch.drop_column(name)
