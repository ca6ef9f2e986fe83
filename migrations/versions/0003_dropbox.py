"""Dropbox: connected accounts and their tokens; display spellings of remote paths.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("remote_nodes") as batch:
        batch.add_column(sa.Column("display", sa.Text(), nullable=True))
    op.create_table(
        "dropbox_accounts",
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("app_key", sa.Text(), nullable=True),
        sa.Column("refresh_token", sa.Text(), nullable=True),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_dropbox_accounts")),
    )


def downgrade() -> None:
    op.drop_table("dropbox_accounts")
    with op.batch_alter_table("remote_nodes") as batch:
        batch.drop_column("display")
