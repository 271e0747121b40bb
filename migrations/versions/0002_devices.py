"""Devices: what the device page shows and what rotation needs.

Revision ID: 0002_devices
Revises: 0001_initial
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_devices"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("previous_token_hash", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("rotated_at", UTC_TIMESTAMP, nullable=True))
        batch.add_column(
            sa.Column("is_remembered", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(sa.Column("user_agent", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("ip_address", sa.String(length=45), nullable=True))
        batch.add_column(sa.Column("last_used_at", UTC_TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("revoked_at", UTC_TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("revoked_reason", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("name", sa.String(length=60), nullable=True))
        batch.add_column(
            sa.Column("notice_dismissed", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.create_index(
            batch.f("ix_refresh_tokens_previous_token_hash"), ["previous_token_hash"]
        )
        batch.create_index(batch.f("ix_refresh_tokens_revoked_at"), ["revoked_at"])

    # Rows from before this migration: remembered (they held a token), last used at sign-in.
    op.execute(
        "UPDATE refresh_tokens SET last_used_at = created_at, "
        "is_remembered = (token_hash IS NOT NULL)"
    )
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.alter_column("last_used_at", existing_type=UTC_TIMESTAMP, nullable=False)


def downgrade():
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_index(batch.f("ix_refresh_tokens_revoked_at"))
        batch.drop_index(batch.f("ix_refresh_tokens_previous_token_hash"))
        for column in (
            "notice_dismissed",
            "name",
            "revoked_reason",
            "revoked_at",
            "last_used_at",
            "ip_address",
            "user_agent",
            "is_remembered",
            "rotated_at",
            "previous_token_hash",
        ):
            batch.drop_column(column)
