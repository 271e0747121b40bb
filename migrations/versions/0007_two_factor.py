"""Two-factor authentication: authenticator apps, recovery codes, roles that
require them, and what each device passed.

Revision ID: 0007_two_factor
Revises: 0006_email_addresses
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_two_factor"
down_revision = "0006_email_addresses"
branch_labels = None
depends_on = None

UTC_TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    op.create_table(
        "totp_authenticators",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("secret_encrypted", sa.String(length=255), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("last_used_at", UTC_TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_totp_authenticators_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_totp_authenticators")),
    )
    op.create_index(
        op.f("ix_totp_authenticators_user_id"), "totp_authenticators", ["user_id"], unique=True
    )

    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_TIMESTAMP, nullable=False),
        sa.Column("used_at", UTC_TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recovery_codes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index(op.f("ix_recovery_codes_user_id"), "recovery_codes", ["user_id"])
    op.create_index(
        op.f("ix_recovery_codes_code_hash"), "recovery_codes", ["code_hash"], unique=True
    )

    # A plain ADD COLUMN, not a batch copy: on SQLite a copy of `roles` would
    # have to drop the table that users' foreign keys point at.
    op.add_column(
        "roles",
        sa.Column("mfa_required", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    # The built-in admin role requires two-factor authentication (ASVS 4.0.3 4.3.1).
    op.execute(sa.text("UPDATE roles SET mfa_required = TRUE WHERE name = 'admin'"))

    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("mfa_at", UTC_TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("auth_method", sa.String(length=32), nullable=True))


def downgrade():
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("auth_method")
        batch.drop_column("mfa_at")
    op.drop_column("roles", "mfa_required")  # SQLite 3.35+ drops a column in place
    op.drop_table("recovery_codes")
    op.drop_table("totp_authenticators")
