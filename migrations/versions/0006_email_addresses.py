"""Email addresses: when each was confirmed, and the single-use links mailed to them.

Accounts from before this migration start unconfirmed: nobody has yet
proved they own those addresses. They can confirm from the account page
(or by a password reset); `EMAIL_VERIFICATION=mandatory` asks them to at
their next login, and its clean-up never deletes an account that has
signed in.

Revision ID: 0006_email_addresses
Revises: 0005_device_series
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_email_addresses"
down_revision = "0005_device_series"
branch_labels = None
depends_on = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    # Plain ADD COLUMNs on both databases: no batch copy of `users`.
    op.add_column("users", sa.Column("email_verified_at", UTC_TIMESTAMP, nullable=True))
    op.add_column("users", sa.Column("pending_email", sa.String(length=255), nullable=True))
    op.add_column("users", sa.Column("pending_email_until", UTC_TIMESTAMP, nullable=True))
    op.create_table(
        "email_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("expires_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("used_at", UTC_TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_email_tokens_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_tokens")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_email_tokens_user_id"), "email_tokens", ["user_id"])
    op.create_index(op.f("ix_email_tokens_token_hash"), "email_tokens", ["token_hash"], unique=True)
    op.create_index(op.f("ix_email_tokens_expires_at"), "email_tokens", ["expires_at"])


def downgrade():
    op.drop_table("email_tokens")
    # Not through a batch copy: on SQLite, recreating `users` with foreign keys
    # on would cascade to every device and audit row. SQLite 3.35+ drops a
    # plain column in place.
    for column in ("pending_email_until", "pending_email", "email_verified_at"):
        op.execute(f"ALTER TABLE users DROP COLUMN {column}")
