"""Security activity: each user's events, the browsers each account has used,
the new-sign-in mail setting, and where each device signed in from.

Revision ID: 0008_security_activity
Revises: 0007_two_factor
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_security_activity"
down_revision = "0007_two_factor"
branch_labels = None
depends_on = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "security_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("browser", sa.String(length=100), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("alert_token_hash", sa.String(length=64), nullable=True),
        sa.Column("alert_used_at", UTC_TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_security_events_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_events")),
        sa.UniqueConstraint("alert_token_hash", name=op.f("uq_security_events_alert_token_hash")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_security_events_user_id_created_at_id",
        "security_events",
        ["user_id", "created_at", "id"],
    )
    op.create_index(op.f("ix_security_events_created_at"), "security_events", ["created_at"])

    op.create_table(
        "known_browsers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_known_browsers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_known_browsers")),
        sa.UniqueConstraint("user_id", "browser_hash", name=op.f("uq_known_browsers_user_id")),
    )

    # Plain ALTER TABLE, not batch mode: SQLite's batch mode copies and drops
    # the table, and dropping `users` would cascade to every device.
    op.add_column(
        "users",
        sa.Column("new_browser_alerts", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.add_column("refresh_tokens", sa.Column("country", sa.String(length=2), nullable=True))
    op.add_column("refresh_tokens", sa.Column("city", sa.String(length=100), nullable=True))


def downgrade():
    # ALTER TABLE ... DROP COLUMN: SQLite 3.35+ and PostgreSQL (see upgrade for why not batch).
    op.drop_column("refresh_tokens", "city")
    op.drop_column("refresh_tokens", "country")
    op.drop_column("users", "new_browser_alerts")
    op.drop_table("known_browsers")
    op.drop_table("security_events")
