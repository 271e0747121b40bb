"""Each user's language and time zone: pages and mails in their language, times in their zone.

Existing accounts read English and UTC, what they read before.

Revision ID: 0017_user_language_time_zone
Revises: 0016_mail_outbox
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_user_language_time_zone"
down_revision = "0016_mail_outbox"
branch_labels = None
depends_on = None


# Plain ALTER TABLE, not batch mode: SQLite's batch mode copies and drops the
# table, and dropping `users` would cascade to every device (see 0008).
def upgrade():
    op.add_column("users", sa.Column("language", sa.String(8), server_default="en", nullable=False))
    op.add_column(
        "users", sa.Column("time_zone", sa.String(64), server_default="UTC", nullable=False)
    )


def downgrade():
    # ALTER TABLE ... DROP COLUMN: SQLite 3.35+ and PostgreSQL.
    op.drop_column("users", "time_zone")
    op.drop_column("users", "language")
