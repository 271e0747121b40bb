"""The audit log.

Revision ID: 0003_audit_log
Revises: 0002_devices
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_audit_log"
down_revision = "0002_devices"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_username", sa.String(length=50), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target_username", sa.String(length=50), nullable=True),
        sa.Column("target", sa.String(length=255), nullable=True),
        sa.Column("ip_address", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_audit_events_actor_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sqlite_autoincrement=True,
    )
    for column in ("created_at", "actor_id", "actor_username", "action", "target_username"):
        op.create_index(op.f(f"ix_audit_events_{column}"), "audit_events", [column])


def downgrade():
    op.drop_table("audit_events")
