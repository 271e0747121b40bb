"""Devices: a series per remembered device, a generation per device's sessions.

Remember cookies become `series.secret`, looked up by series; sessions name
the device's generation. Cookies and sessions from before this migration
no longer match and sign their browsers out once.

Revision ID: 0005_device_series
Revises: 0004_search_trigrams
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_device_series"
down_revision = "0004_search_trigrams"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("series", sa.String(length=32), nullable=True))
        batch.add_column(
            sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False)
        )
        batch.create_index(batch.f("ix_refresh_tokens_series"), ["series"], unique=True)


def downgrade():
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_index(batch.f("ix_refresh_tokens_series"))
        batch.drop_column("session_generation")
        batch.drop_column("series")
