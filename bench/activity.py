"""Benchmark /account/activity: 100,000 events for one user, 1,000,000 in all; p50/p95.

    .venv/bin/python bench/activity.py                      # SQLite, a temp file
    .venv/bin/python bench/activity.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test_activity

The database is emptied and migrated (`flask db upgrade`), then filled in
bulk: 10,000 users, the bench user's 100,000 events over 90 days and
900,000 events of the others interleaved with them. Each scenario is timed
twice: the whole page through the test client, signed in as the bench user
(user loader, page query, template), and the page query alone
(`activity_page`). Numbers are wall-clock milliseconds on this machine;
they are for comparing, not for asserting.
"""

from __future__ import annotations

import argparse
import os
import random
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

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402

from webapp import create_app  # noqa: E402
from webapp.domain import pages  # noqa: E402
from webapp.domain.activity import activity_page  # noqa: E402
from webapp.extensions import db  # noqa: E402
from webapp.models import Role, SecurityEvent, User  # noqa: E402

PASSWORD = "Bench-Pa55word-horse"
BATCH = 10_000
CODES = ["login", "login_failed", "logout", "new_browser_login", "device_revoked"]
ADDRESSES = ["81.2.69.160", "8.8.8.8", "10.0.0.7", "2a00:1450::1"]
COUNTRIES = {"81.2.69.160": "GB", "8.8.8.8": "US", "10.0.0.7": "XL", "2a00:1450::1": "IE"}


def reset_database(url: str) -> None:
    """Drop everything in the benchmark database (PostgreSQL); SQLite starts as a new file."""
    if url.startswith("postgresql"):
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()


def seed_users(count: int) -> list[uuid.UUID]:
    user_role = db.session.scalar(select(Role.id).where(Role.name == "user"))
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    rows = [
        {
            "id": user_id,
            "username": f"member{n:05d}",
            "email": f"member{n:05d}@example.org",
            "password_hash": "$2b$04$bench.not.a.password.hash.............................",
            "role_id": user_role,
            "is_active": True,
            "created_at": now - timedelta(days=100),
            "updated_at": now - timedelta(days=100),
        }
        for n, user_id in enumerate(ids)
    ]
    for first in range(0, count, BATCH):
        db.session.execute(insert(User), rows[first : first + BATCH])
    db.session.commit()
    return ids


def seed_events(owner: uuid.UUID, others: list[uuid.UUID], mine: int, total: int) -> None:
    """Insert `total` events over 90 days, `mine` of them the owner's, spread evenly."""
    rng = random.Random(15)
    start = datetime.now(UTC) - timedelta(days=90)
    step = timedelta(days=90) / total
    every = total // mine
    for first in range(0, total, BATCH):
        rows = []
        for n in range(first, min(first + BATCH, total)):
            ip = ADDRESSES[n % len(ADDRESSES)]
            rows.append(
                {
                    "user_id": owner if n % every == 0 else rng.choice(others),
                    "event": CODES[n % len(CODES)],
                    "device_id": n // 7,
                    "ip_address": ip,
                    "browser": "Firefox on Mac OS X" if n % 2 else "Chrome on Linux",
                    "country": COUNTRIES[ip],
                    "city": None,
                    "details": {"method": "password"} if n % 5 == 0 else None,
                    "created_at": start + step * n,
                }
            )
        db.session.execute(insert(SecurityEvent), rows)
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
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--mine", type=int, default=100_000, help="the bench user's events")
    parser.add_argument("--events", type=int, default=1_000_000, help="events in all")
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--explain", action="store_true", help="print the query plans")
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
        from webapp.domain.users import create_user

        owner = create_user("bench-owner", "bench-owner@example.com", PASSWORD)
        db.session.commit()
        began = time.perf_counter()
        others = seed_users(args.users - 1)
        seed_events(owner.id, others, args.mine, args.events)
        seeded_in = time.perf_counter() - began
        db.session.execute(text("ANALYZE"))
        db.session.commit()
        mine = db.session.scalar(
            select(func.count()).select_from(SecurityEvent).where(SecurityEvent.user_id == owner.id)
        )
        total = db.session.scalar(select(func.count()).select_from(SecurityEvent))

        client = app.test_client()
        login_page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page).group(1)
        signed = client.post(
            "/login",
            data={"csrf_token": token, "identifier": "bench-owner", "password": PASSWORD},
        )
        assert signed.status_code == 302, signed.status_code

        def cursor_at(position: int) -> str:
            row = db.session.execute(
                select(SecurityEvent.created_at, SecurityEvent.id)
                .where(SecurityEvent.user_id == owner.id)
                .order_by(SecurityEvent.created_at.desc(), SecurityEvent.id.desc())
                .offset(position)
                .limit(1)
            ).one()
            return pages.cursor(row.created_at, row.id)

        tenth = cursor_at(9 * pages.PAGE_SIZE - 1)
        middle = cursor_at(mine // 2)
        last = cursor_at(mine - 10)
        scenarios: list[tuple[str, dict]] = [
            ("first page", {}),
            ("page 10 (next)", {"after": tenth}),
            ("page at 50% (next)", {"after": middle}),
            ("page at 50% (previous)", {"before": middle}),
            ("last page (next)", {"after": last}),
        ]

        def page_request(params: dict) -> Callable[[], object]:
            def run() -> None:
                response = client.get("/account/activity", query_string=params)
                assert response.status_code == 200, response.status_code

            return run

        def page_query(params: dict) -> Callable[[], object]:
            user = db.session.get(User, owner.id)

            def run() -> None:
                activity_page(user, None, after=params.get("after"), before=params.get("before"))
                db.session.rollback()

            return run

        dialect = db.engine.dialect.name
        if args.explain:
            when, key = pages.parse_cursor(middle, int)
            stmt = (
                select(SecurityEvent)
                .where(SecurityEvent.user_id == owner.id)
                .where(SecurityEvent.created_at <= when)
                .order_by(SecurityEvent.created_at.desc(), SecurityEvent.id.desc())
                .limit(pages.PAGE_SIZE + 1)
            )
            compiled = stmt.compile(db.engine, compile_kwargs={"literal_binds": True})
            prefix = "EXPLAIN QUERY PLAN " if dialect == "sqlite" else "EXPLAIN "
            for row in db.session.execute(text(prefix + str(compiled))):
                print("   ", " ".join(str(part) for part in row))

        print(
            f"{dialect}: {total:,} events ({mine:,} the bench user's), {args.users:,} users, "
            f"seeded in {seeded_in:.1f} s; {args.repeat} runs each"
        )
        print(
            f"{'scenario':<28} {'page p50':>9} {'page p95':>9} {'query p50':>10} {'query p95':>10}"
        )
        for name, params in scenarios:
            page50, page95 = measure(page_request(params), args.repeat)
            query50, query95 = measure(page_query(params), args.repeat)
            print(
                f"{name:<28} {page50:>7.2f}ms {page95:>7.2f}ms {query50:>8.2f}ms {query95:>8.2f}ms"
            )
        db.session.remove()
        db.engine.dispose()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
