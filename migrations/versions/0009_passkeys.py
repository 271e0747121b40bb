"""Passkeys: WebAuthn credentials, a random user handle per user, server-side challenges.

Revision ID: 0009_passkeys
Revises: 0008_security_activity
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_passkeys"
down_revision = "0008_security_activity"
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN and a unique index, never a batch copy of `users`:
    # on SQLite the copy drops the old table, and with foreign keys on that
    # would cascade to every user's devices.
    op.add_column("users", sa.Column("webauthn_handle", sa.LargeBinary(), nullable=True))
    op.create_index(op.f("ix_users_webauthn_handle"), "users", ["webauthn_handle"], unique=True)

    op.create_table(
        "webauthn_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("credential_id", sa.LargeBinary(), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.Integer(), nullable=False),
        sa.Column("transports", sa.String(length=255), nullable=True),
        sa.Column("aaguid", sa.String(length=36), nullable=True),
        sa.Column("backup_eligible", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("backup_state", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_webauthn_credentials_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webauthn_credentials")),
    )
    op.create_index(
        op.f("ix_webauthn_credentials_credential_id"),
        "webauthn_credentials",
        ["credential_id"],
        unique=True,
    )
    op.create_index(op.f("ix_webauthn_credentials_user_id"), "webauthn_credentials", ["user_id"])

    op.create_table(
        "webauthn_challenges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("challenge", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_webauthn_challenges_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webauthn_challenges")),
    )
    op.create_index(
        op.f("ix_webauthn_challenges_challenge"),
        "webauthn_challenges",
        ["challenge"],
        unique=True,
    )
    op.create_index(op.f("ix_webauthn_challenges_user_id"), "webauthn_challenges", ["user_id"])
    op.create_index(
        op.f("ix_webauthn_challenges_expires_at"), "webauthn_challenges", ["expires_at"]
    )


def downgrade():
    op.drop_table("webauthn_challenges")
    op.drop_table("webauthn_credentials")
    op.drop_index(op.f("ix_users_webauthn_handle"), table_name="users")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite 3.35+ drops a column in place (no batch copy: see upgrade).
        op.execute("ALTER TABLE users DROP COLUMN webauthn_handle")
    else:
        op.drop_column("users", "webauthn_handle")
