"""The token API for apps: a device's kind, and the pending second steps of app sign-ins.

`refresh_tokens.kind` says whether a device is a browser or an app (an
app's name goes in the existing `name` column, which the owner may
change). `mfa_tokens` holds each `mfa_token` handed to an app whose user
has a second factor: only its hash, single use, five wrong codes and
five minutes end it, in the database so every process sees the same.

Revision ID: 0015_app_tokens
Revises: 0013_live_devices_index
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

UTC_TIMESTAMP = sa.DateTime(timezone=True)

revision = "0015_app_tokens"
down_revision = "0014_recovery"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=8), nullable=False, server_default="browser")
        )
    op.create_table(
        "mfa_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("device_name", sa.String(length=60), nullable=False),
        sa.Column("issued_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("used_at", UTC_TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mfa_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_mfa_tokens")),
    )
    op.create_index(op.f("ix_mfa_tokens_user_id"), "mfa_tokens", ["user_id"])
    op.create_index(op.f("ix_mfa_tokens_expires_at"), "mfa_tokens", ["expires_at"])


def downgrade():
    op.drop_index(op.f("ix_mfa_tokens_expires_at"), table_name="mfa_tokens")
    op.drop_index(op.f("ix_mfa_tokens_user_id"), table_name="mfa_tokens")
    op.drop_table("mfa_tokens")
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("kind")
