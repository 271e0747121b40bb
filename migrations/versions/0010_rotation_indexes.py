"""Drop the indexes on refresh_tokens.token_hash and previous_token_hash.

A device is found by its series (a remember cookie) or its id (a session);
the two hashes are only compared on that one row. Their indexes were never
read, and every rotation of a remember cookie rewrote both: on SQLite they
doubled the work a rotation does while it holds the database's write lock.

Revision ID: 0010_rotation_indexes
Revises: 0009_passkeys
Create Date: 2026-11-30
"""

from alembic import op

revision = "0010_rotation_indexes"
down_revision = "0009_passkeys"
branch_labels = None
depends_on = None


def upgrade():
    op.drop_index(op.f("ix_refresh_tokens_previous_token_hash"), table_name="refresh_tokens")
    op.drop_index(op.f("ix_refresh_tokens_token_hash"), table_name="refresh_tokens")


def downgrade():
    op.create_index(
        op.f("ix_refresh_tokens_token_hash"), "refresh_tokens", ["token_hash"], unique=True
    )
    op.create_index(
        op.f("ix_refresh_tokens_previous_token_hash"), "refresh_tokens", ["previous_token_hash"]
    )
