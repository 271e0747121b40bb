"""PostgreSQL: trigram indexes for the admin search on part of a username or email.

`LIKE '%term%'` cannot use a B-tree index, so with 100,000 users a rare term
scanned the whole table. pg_trgm's GIN indexes serve such patterns. SQLite
has no equivalent; there the search stays a scan.

Revision ID: 0004_search_trigrams
Revises: 0003_audit_log
Create Date: 2026-11-27
"""

from alembic import op

revision = "0004_search_trigrams"
down_revision = "0003_audit_log"
branch_labels = None
depends_on = None

COLUMNS = ("username", "email")


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    # pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may create it.
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for column in COLUMNS:
        op.create_index(
            f"ix_users_{column}_trgm",
            "users",
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.drop_index(f"ix_users_{column}_trgm", table_name="users")
