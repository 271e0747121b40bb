"""Taking an account back: a recovery marker, devices that name their passkey, browsers last seen.

- `users.recovered_at`: when the owner last took the account back. A
  second step, an API `mfa_token` or any other pending step issued before
  it is refused, wherever it is kept (often another browser's session).
- `users.first_sign_in_at`: the account's very first sign-in, the only one
  that never mails the new-browser alert; forgetting browsers (a recovery,
  the purge) does not make a later one "first". Backfilled from the
  browsers already known.
- `refresh_tokens.passkey_id`: the passkey a device signed in with, so
  removing the passkey signs it out. No foreign key: removing the passkey
  revokes its devices first, and what a revoked device signed in with is
  history. (A plain ADD COLUMN: a batch copy of `refresh_tokens` or `users`
  on SQLite would cascade with foreign keys on.)
- `known_browsers.last_seen_at`: `purge-activity` forgets browsers not seen
  for SECURITY_LOG_DAYS. Backfilled from `created_at`.

Revision ID: 0014_recovery
Revises: 0013_live_devices_index
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_recovery"
down_revision = "0013_live_devices_index"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("recovered_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("users", sa.Column("first_sign_in_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE users SET first_sign_in_at = (SELECT min(known_browsers.created_at) "
        "FROM known_browsers WHERE known_browsers.user_id = users.id)"
    )
    op.add_column("refresh_tokens", sa.Column("passkey_id", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_refresh_tokens_passkey_id"), "refresh_tokens", ["passkey_id"])
    # known_browsers is a leaf table: a batch copy on SQLite cascades nowhere.
    with op.batch_alter_table("known_browsers") as batch:
        batch.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE known_browsers SET last_seen_at = created_at")
    with op.batch_alter_table("known_browsers") as batch:
        batch.alter_column("last_seen_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_index(op.f("ix_known_browsers_last_seen_at"), ["last_seen_at"])


def _drop(table: str, column: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite 3.35+ drops a column in place (no batch copy: see the docstring).
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
    else:
        op.drop_column(table, column)


def downgrade():
    with op.batch_alter_table("known_browsers") as batch:
        batch.drop_index(op.f("ix_known_browsers_last_seen_at"))
        batch.drop_column("last_seen_at")
    op.drop_index(op.f("ix_refresh_tokens_passkey_id"), table_name="refresh_tokens")
    _drop("refresh_tokens", "passkey_id")
    _drop("users", "first_sign_in_at")
    _drop("users", "recovered_at")
