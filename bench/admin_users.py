"""Benchmark /admin/users with 100,000 users: p50/p95 per page, SQLite or PostgreSQL.

    .venv/bin/python bench/admin_users.py                      # SQLite, a temp file
    .venv/bin/python bench/admin_users.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test_admin

The database is emptied and migrated (`flask db upgrade`), then filled with
one bulk INSERT per 10,000 users. Each scenario is timed twice: the whole
page through the test client as a signed-in admin (user loader, query,
template), and the page query alone (`users_page`). Numbers are wall-clock
milliseconds on this machine; they are for comparing, not for asserting.
"""

from __future__ import annotations

import argparse
import contextvars
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("WEBAPP_ENV", "testing")
os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")

from flask import g  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import create_engine, insert, select, text  # noqa: E402

from webapp import create_app  # noqa: E402
from webapp.domain import administration as services  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Role, User  # noqa: E402

PASSWORD = "Bench-Pa55word-horse"
BATCH = 10_000


def reset_database(url: str) -> None:
    """Drop everything in the benchmark database (PostgreSQL); SQLite starts as a new file."""
    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()


def seed(count: int) -> None:
    """Insert `count` users in bulk, created over two years, newest last."""
    user_role = db.session.scalar(select(Role.id).where(Role.name == "user"))
    start = datetime.now(UTC) - timedelta(days=730)
    step = timedelta(days=729) / count
    for first in range(0, count, BATCH):
        rows = [
            {
                "id": uuid.uuid4(),
                "username": f"member{n:06d}",
                "email": f"member{n:06d}@example{n % 97}.org",
                "password_hash": "$2b$04$bench.not.a.password.hash.............................",
                "role_id": user_role,
                "is_active": n % 50 != 0,
                "created_at": start + step * n,
                "updated_at": start + step * n,
            }
            for n in range(first, min(first + BATCH, count))
        ]
        db.session.execute(insert(User), rows)
        db.session.commit()


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))
    return ordered[index]


def measure(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    for _ in range(3):  # warm caches and the connection pool
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples), percentile(samples, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--explain", action="store_true", help="print the first page's plan")
    args = parser.parse_args()

    tmp = None
    url = args.database_url
    if not url:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    reset_database(url)
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": url,
            "BCRYPT_ROUNDS": 4,
            "RATELIMIT_ENABLED": False,
            "RATELIMIT_STORAGE_URI": "memory://",
            "MAIL_SERVER": "",
        }
    )
    with app.app_context():
        upgrade(directory=str(Path(app.root_path).parent / "migrations"))
        began = time.perf_counter()
        seed(args.users)
        seeded_in = time.perf_counter() - began

        from webapp.domain.users import create_user

        admin = create_user("bench-admin", "bench-admin@example.com", PASSWORD, "admin")
        db.session.commit()
        # The admin role requires two-factor: an authenticator app, its code typed below.
        import pyotp

        from webapp.security.two_factor import add_authenticator, new_secret

        secret = new_secret()
        add_authenticator(admin, secret, accepted_step=0)
        db.session.commit()
        db.session.execute(text("ANALYZE"))
        db.session.commit()

        client = app.test_client()
        login_page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page).group(1)
        signed = client.post(
            "/login",
            data={"csrf_token": token, "identifier": "bench-admin", "password": PASSWORD},
        )
        assert signed.headers["Location"] == "/login/verify", signed.status_code
        # The login began a new session: these requests get an app context of
        # their own, as in production, not `g` (and its CSRF token) of this one.
        isolated = contextvars.Context().run
        page = isolated(client.get, "/login/verify").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
        signed = isolated(
            client.post,
            "/login/verify",
            data={"csrf_token": token, "code": pyotp.TOTP(secret).now()},
        )
        assert signed.status_code == 302, signed.status_code
        g.pop("_login_user", None)  # the next request here reads the new session

        # Cursors deep in the list: the user at position 50,000 and the tenth page.
        def cursor_at(position: int) -> str:
            row = db.session.scalars(
                select(User)
                .order_by(User.created_at.desc(), User.id.desc())
                .offset(position)
                .limit(1)
            ).one()
            return services._cursor(row.created_at, row.id)

        middle = cursor_at(args.users // 2)
        tenth = cursor_at(9 * services.PAGE_SIZE - 1)
        rare = f"member{args.users // 3:06d}@"

        scenarios: list[tuple[str, dict]] = [
            ("first page", {}),
            ("page 10 (next)", {"after": tenth}),
            ("page at 50% (next)", {"after": middle}),
            ("page at 50% (previous)", {"before": middle}),
            ("search common: 'example1'", {"q": "example1"}),
            ("search common, page 2", {"q": "example1", "after": tenth}),
            (f"search rare: '{rare}'", {"q": rare}),
            ("search no match: 'nobody'", {"q": "nobody"}),
        ]

        def page_request(params: dict) -> Callable[[], object]:
            def run() -> None:
                response = client.get("/admin/users", query_string=params)
                assert response.status_code == 200, response.status_code

            return run

        def page_query(params: dict) -> Callable[[], object]:
            def run() -> None:
                services.users_page(
                    params.get("q", ""), after=params.get("after"), before=params.get("before")
                )
                db.session.rollback()

            return run

        if args.explain:
            stmt = (
                select(User)
                .order_by(User.created_at.desc(), User.id.desc())
                .limit(services.PAGE_SIZE + 1)
            )
            compiled = stmt.compile(db.engine, compile_kwargs={"literal_binds": True})
            prefix = "EXPLAIN QUERY PLAN " if url.startswith("sqlite") else "EXPLAIN "
            for row in db.session.execute(text(prefix + str(compiled))):
                print("   ", " ".join(str(part) for part in row))

        dialect = db.engine.dialect.name
        print(f"{dialect}: {args.users:,} users seeded in {seeded_in:.1f} s; {args.repeat} runs")
        print(
            f"{'scenario':<40} {'page p50':>9} {'page p95':>9} {'query p50':>10} {'query p95':>10}"
        )
        for name, params in scenarios:
            page50, page95 = measure(page_request(params), args.repeat)
            query50, query95 = measure(page_query(params), args.repeat)
            print(
                f"{name:<40} {page50:>7.2f}ms {page95:>7.2f}ms {query50:>8.2f}ms {query95:>8.2f}ms"
            )
        db.session.remove()
        db.engine.dispose()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
