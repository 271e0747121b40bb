"""Index a user's live devices by (user_id, is_revoked); drop the index on is_revoked alone.

Every sign-in looks up the user's live devices (the cap of 100), and so do
"Sign out all other devices" and the device page. On SQLite, without
statistics, the planner took the index on is_revoked for these and read
every live device of every user: 3 ms a sign-in with 20,000 devices of
other users, growing with the site. The new index finds exactly the
user's live devices and still serves lookups by user alone (the cascade
when an account is deleted), so it replaces the index on user_id too.

Revision ID: 0013_live_devices_index
Revises: 0012_alerts_index
Create Date: 2026-11-30
"""

from alembic import op

revision = "0013_live_devices_index"
down_revision = "0012_alerts_index"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        "ix_refresh_tokens_user_id_is_revoked", "refresh_tokens", ["user_id", "is_revoked"]
    )
    op.drop_index(op.f("ix_refresh_tokens_is_revoked"), table_name="refresh_tokens")
    op.drop_index(op.f("ix_refresh_tokens_user_id"), table_name="refresh_tokens")


def downgrade():
    op.create_index(op.f("ix_refresh_tokens_user_id"), "refresh_tokens", ["user_id"])
    op.create_index(op.f("ix_refresh_tokens_is_revoked"), "refresh_tokens", ["is_revoked"])
    op.drop_index("ix_refresh_tokens_user_id_is_revoked", table_name="refresh_tokens")
