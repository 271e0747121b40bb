"""`make bench`: load-test the app with wrk beside a plain Flask page.

Sets up a fresh database (SQLite, or PostgreSQL with --postgres), runs the
migrations, seeds it, serves the app and bench/plain_app.py with the same
gunicorn settings (2 sync workers), drives each scenario with wrk and
prints a table: requests/s, latency, SQL queries per request (counted
in-process with the test client) and the ratio to the plain page (for the
login, to the bcrypt ceiling: cores / one bcrypt check at cost 12). Each
wrk run is repeated (--rounds, 3 by default) and the median round is shown,
as in issue 16's method: one 10-second run on this machine varies by ±10 %.
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import dataclasses
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

SECRET_KEY = "bench-only-secret-key-" + os.urandom(16).hex()


def _bench_jwt_key() -> str:
    """A fresh ES256 signing key for this run (production requires one)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    return (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


JWT_PRIVATE_KEY = _bench_jwt_key()
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
USERS_FOR_ADMIN = 100_000
SEARCH_TERM = "member04242"


def app_environment(db_url: str) -> dict[str, str]:
    """Return the environment the app runs with, in gunicorn and in-process alike."""
    env = dict(os.environ)
    env.update(
        WEBAPP_ENV="production",
        COOKIE_SECURE="0",
        SECRET_KEY=SECRET_KEY,
        RATELIMIT_ENABLED="0",
        RATELIMIT_STORAGE_URI="memory://",
        # Cheaper hashes only for profiling under valgrind (bench/profile.py's note).
        BCRYPT_ROUNDS=os.environ.get("BENCH_BCRYPT_ROUNDS", "12"),
        DATABASE_URL=db_url,
        JWT_PRIVATE_KEY=JWT_PRIVATE_KEY,
    )
    return env


# --- database -----------------------------------------------------------------


def prepare_postgres(url: str) -> None:
    """Create the benchmark database if missing and empty its schema."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    params = {
        "host": parsed.host or "127.0.0.1",
        "port": parsed.port or 5432,
        "user": parsed.username or "postgres",
        "password": parsed.password,
    }
    name = parsed.database
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(dbname=name, autocommit=True, **params) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# --- serving ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(
    spec: str, env: dict[str, str], log: Path, workers: int, config: Path | None = None
) -> Iterator[str]:
    """Serve a WSGI app with gunicorn on a free loopback port; yield its base URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(workers),
        "--bind",
        f"127.0.0.1:{port}",
        "--pythonpath",
        f"{ROOT},{BENCH}",
        "--log-level",
        "warning",
        *(["--config", str(config)] if config else []),
        spec,
    ]
    with log.open("ab") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    SERVERS[base] = proc.pid
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + "/", timeout=2):
                    break
            except urllib.error.HTTPError:
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn {spec} did not start; see {log}") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- CPU accounting (Linux /proc): the app's and the database's share ------------

SERVERS: dict[str, int] = {}  # base URL -> gunicorn master pid
COUNT_POSTGRES = False  # set by --postgres: count the database server's CPU too
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_of(pid: int) -> float:
    """Return the user + system CPU seconds of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _tree(pid: int) -> list[int]:
    """Return a process and its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def _postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


def cpu_snapshot(base: str) -> dict[int, float]:
    """CPU seconds so far of the server's processes (keys > 0) and PostgreSQL's (keys < 0)."""
    snap = {pid: _cpu_of(pid) for pid in _tree(SERVERS[base])} if base in SERVERS else {}
    if COUNT_POSTGRES:
        snap.update({-pid: _cpu_of(pid) for pid in _postgres_pids()})
    return snap


def settle(base: str, timeout: float = 10.0) -> None:
    """Wait until the server's processes are idle.

    wrk stops with requests in flight and more queued in the listen backlog,
    and the workers still answer them; a login is 0.2 s of a core, so the
    next run would otherwise begin with up to four logins of the last one.
    """
    deadline = time.monotonic() + timeout
    before = cpu_snapshot(base)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        after = cpu_snapshot(base)
        if sum(cpu_spent(before, after)) < 0.02:
            return
        before = after


def cpu_spent(before: dict[int, float], after: dict[int, float]) -> tuple[float, float]:
    """Return the (app, database) CPU seconds spent between two snapshots."""
    app = db = 0.0
    for key, value in after.items():
        spent = value - before.get(key, 0.0)
        if key > 0:
            app += spent
        else:
            db += spent
    return app, db


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


@dataclass
class Reply:
    status: int
    text: str
    headers: object


def fetch(url: str, *, cookie: str = "", data: str | None = None) -> Reply:
    """Send one request as the benchmark browser, without following redirects."""
    from seed import USER_AGENT

    headers = {"User-Agent": USER_AGENT}
    if cookie:
        headers["Cookie"] = cookie
    body = None
    if data is not None:
        body = data.encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=body, headers=headers)
    try:
        with _opener.open(request, timeout=30) as response:
            return Reply(response.status, response.read().decode(), response.headers)
    except urllib.error.HTTPError as exc:
        with exc:
            return Reply(exc.code, exc.read().decode(errors="replace"), exc.headers)


# --- load ---------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    errors: int
    exhausted: int
    app_cpu_ms: float = 0.0  # gunicorn's CPU a request
    db_cpu_ms: float = 0.0  # PostgreSQL's CPU a request (all its processes)
    rounds: list[float] = field(default_factory=list)  # req/s of each round


def rounds(
    args: argparse.Namespace, run_round: Callable[[int], Load], *, note: list[str] | None = None
) -> Load:
    """Run `run_round(i)` for each of the rounds; return the median round.

    Requests, errors and exhausted tokens are the rounds' sums, so that no
    round's failures hide behind the median. `note` gets the rounds' req/s.
    """
    loads = [run_round(i) for i in range(args.rounds)]
    median = sorted(loads, key=lambda load: load.rps)[len(loads) // 2]
    combined = dataclasses.replace(
        median,
        requests=sum(load.requests for load in loads),
        errors=sum(load.errors for load in loads),
        exhausted=sum(load.exhausted for load in loads),
        rounds=[load.rps for load in loads],
    )
    if note is not None and len(loads) > 1:
        note.append("rounds: " + ", ".join(f"{load.rps:.1f}" for load in loads) + " req/s")
    return combined


def wrk(base: str, path: str, args: argparse.Namespace, **options: str) -> Load:
    """Drive `path` with wrk through bench/wrk.lua; `options` are its BENCH_* settings."""
    from seed import USER_AGENT

    duration = options.pop("duration", str(args.duration))
    connections = options.pop("connections", str(args.connections))
    env = dict(os.environ)
    env.update(
        BENCH_PATH=path, BENCH_THREADS=str(args.threads), BENCH_USER_AGENT=USER_AGENT, **options
    )
    command = [
        "wrk",
        "-t",
        str(args.threads),
        "-c",
        connections,
        "-d",
        f"{duration}s",
        "--timeout",
        "30s",
        "-s",
        str(BENCH / "wrk.lua"),
        base,
    ]
    settle(base)
    cpu_before = cpu_snapshot(base)
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    app_cpu, db_cpu = cpu_spent(cpu_before, cpu_snapshot(base))
    line = next(line for line in out.splitlines() if line.startswith("BENCH_JSON "))
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = sum(
        data[key]
        for key in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    )
    return Load(
        rps=data["requests"] / (data["duration_us"] / 1e6),
        p50_ms=data["p50_us"] / 1000,
        p95_ms=data["p95_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        requests=data["requests"],
        errors=errors,
        exhausted=data["exhausted"],
        app_cpu_ms=app_cpu * 1000 / max(data["requests"], 1),
        db_cpu_ms=db_cpu * 1000 / max(data["requests"], 1),
    )


# --- the report ---------------------------------------------------------------


@dataclass
class Row:
    number: str
    name: str
    load: Load | None = None
    queries: int | None = None
    ratio: float | None = None
    target: str = ""
    met: bool | None = None
    notes: list[str] = field(default_factory=list)


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return f"{os.cpu_count()} cores ({model}), {memory} RAM, {platform.system()} Python " + (
        platform.python_version()
    )


# Issue 16's reference run (same machine, same method, plain page 4,461 req/s):
# the ratio each framework reached; "-": no such page.
REFERENCE = {
    "1": ("0.24", "0.11"),
    "2": ("0.34", "0.12"),
    "3": ("0.35 (no rotation)", "0.10"),
    "3b": ("-", "-"),
    "4": ("0.97", "0.78"),
    "5": ("-", "-"),
}


def render(rows: list[Row], header: list[str]) -> str:
    lines = [*header, ""]
    lines.append(
        "| # | scenario | req/s | p50 ms | p95 ms | p99 ms | SQL/req | app CPU ms/req "
        "| DB CPU ms/req | ratio (ours) | Flask-Security-Too 5.9 | django-allauth 65 | goal | met |"
    )
    lines.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for row in rows:
        load = row.load
        cells = [
            row.number,
            row.name,
            f"{load.rps:.1f}" if load else "n/a",
            f"{load.p50_ms:.1f}" if load else "n/a",
            f"{load.p95_ms:.1f}" if load else "n/a",
            f"{load.p99_ms:.1f}" if load else "n/a",
            str(row.queries) if row.queries is not None else "n/a",
            f"{load.app_cpu_ms:.2f}" if load else "n/a",
            f"{load.db_cpu_ms:.2f}" if load and load.db_cpu_ms else "-",
            f"{row.ratio:.2f}" if row.ratio is not None else "",
            *REFERENCE.get(row.number, ("", "")),
            row.target,
            {True: "yes", False: "**no**", None: "n/a"}[row.met],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {row.number}: {note}" for row in rows for note in row.notes]
    notes.append(
        "- Flask-Security-Too and django-allauth: ratios from issue 16's side-by-side run "
        "(not re-measured here); app CPU: the gunicorn processes' user+system time over the "
        "run divided by its requests; DB CPU: every `postgres` process's, likewise (on "
        "PostgreSQL; other users of the server count too)"
    )
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


# --- in-process: seeding, cookies, query counts, bcrypt -------------------------


class InProcess:
    """The app in this process, on the benchmark database, for seeding and counting."""

    def __init__(self, env: dict[str, str]) -> None:
        import logging

        os.environ.update(env)
        from webapp import create_app

        self.app = create_app()
        logging.getLogger("webapp").setLevel(logging.WARNING)
        self.ctx = self.app.app_context()
        self.ctx.push()

    def client(self):
        from flask.testing import FlaskClient
        from seed import USER_AGENT

        class IsolatedClient(FlaskClient):
            """Run each request in its own app context, as in production (own `g`)."""

            def open(self, *args, **kwargs):
                return contextvars.Context().run(super().open, *args, **kwargs)

        self.app.test_client_class = IsolatedClient
        client = self.app.test_client()
        client.environ_base["HTTP_USER_AGENT"] = USER_AGENT
        client.environ_base["REMOTE_ADDR"] = "127.0.0.1"
        return client

    def session_cookie(self, username: str) -> str:
        """Sign in through the login form; return the Cookie header of the session."""
        from seed import PASSWORD

        client = self.client()
        token = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
        response = client.post(
            "/login", data={"csrf_token": token, "identifier": username, "password": PASSWORD}
        )
        assert response.status_code == 302, f"login as {username}: {response.status_code}"
        if response.headers["Location"] == "/login/verify":
            response = self.second_step(client)
        name = self.app.config["SESSION_COOKIE_NAME"]
        return f"{name}={client.get_cookie(name).value}"

    def second_step(self, client):
        """Type the bench admin's authenticator code (the next one, if this one was used)."""
        import time

        import pyotp
        from seed import TOTP_SECRET

        token = CSRF_RE.search(client.get("/login/verify").get_data(as_text=True)).group(1)
        for ahead in (0, 30):
            code = pyotp.TOTP(TOTP_SECRET).at(time.time() + ahead)
            response = client.post("/login/verify", data={"csrf_token": token, "code": code})
            if response.status_code == 302:
                return response
        raise AssertionError(f"second step refused: {response.status_code}")

    def access_token(self, username: str) -> str:
        """Sign an app in through the token API; return its access token."""
        from seed import PASSWORD

        response = self.client().post(
            "/api/v1/auth/token",
            json={"username": username, "password": PASSWORD, "device_name": "Bench app"},
        )
        assert response.status_code == 200, f"api sign-in as {username}: {response.status_code}"
        return response.json["access_token"]

    def remember_cookie(self, token: str) -> str:
        return f"{self.app.config['REMEMBER_DEVICE_COOKIE_NAME']}={token}"

    def statements(self, send: Callable[[object], object], warm: bool = True) -> list[str]:
        """Return the SQL statements one request makes (after a warm-up request)."""
        from sqlalchemy import event

        from webapp.extensions import db

        client = self.client()
        if warm:
            send(client)
        statements: list[str] = []

        def before(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            send(client)
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
        return statements

    def count(self, send: Callable[[object], object], warm: bool = True) -> int:
        """Return how many SQL statements one request makes (after a warm-up request)."""
        return len(self.statements(send, warm))

    def count_writes(self, send: Callable[[object], object]) -> int:
        """Return how many INSERT, UPDATE or DELETE statements one request makes."""
        return sum(
            statement.lstrip().split(None, 1)[0].upper() in {"INSERT", "UPDATE", "DELETE"}
            for statement in self.statements(send, warm=False)
        )

    def count_login(self, username: str) -> int:
        """Return how many SQL statements one valid POST /login makes."""
        from seed import PASSWORD

        client = self.client()
        token = CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
        data = {"csrf_token": token, "identifier": username, "password": PASSWORD}
        return self.count(lambda _: client.post("/login", data=data), warm=False)

    def bcrypt_times(self, rounds: int = 12, tries: int = 7) -> list[float]:
        """Return the times of `tries` bcrypt checks at `rounds`, one after another."""
        import bcrypt

        hashed = bcrypt.hashpw(b"correct horse", bcrypt.gensalt(rounds))
        times = []
        for _ in range(tries):
            start = time.perf_counter()
            bcrypt.checkpw(b"correct horse", hashed)
            times.append(time.perf_counter() - start)
        return times

    def bcrypt_parallel_seconds(self, processes: int, rounds: int = 12, tries: int = 4) -> float:
        """Return the time of one bcrypt check while `processes` run at once.

        The ceiling "cores / one check" assumes the cores are independent; on
        a VM whose vCPUs share a physical core, checks slow down when run in
        parallel, and this measures by how much.
        """
        code = (
            "import bcrypt, time\n"
            f"h = bcrypt.hashpw(b'x', bcrypt.gensalt({rounds}))\n"
            "t = time.perf_counter()\n"
            f"for _ in range({tries}): bcrypt.checkpw(b'x', h)\n"
            f"print((time.perf_counter() - t) / {tries})\n"
        )
        procs = [
            subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
            for _ in range(processes)
        ]
        times = [float(proc.communicate()[0]) for proc in procs]
        return statistics.mean(times)

    def has_endpoint(self, name: str) -> bool:
        return name in self.app.view_functions


def login_probe_note(path: Path) -> str:
    """Summarise what bench/login_probe.py saw inside the workers."""
    checks: list[float] = []
    rest: list[float] = []
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            worker = json.loads(line)
            checks += worker["checks"]
            rest += worker["rest"]
    if not checks:
        return "the workers reported no logins"
    check_ms = statistics.median(checks) * 1000
    rest_ms = statistics.median(rest) * 1000
    mean_check_ms = statistics.mean(checks) * 1000
    mean_rest_ms = statistics.mean(rest) * 1000
    return (
        f"inside the workers: the bcrypt check {check_ms:.1f} ms, the rest of a login "
        f"{rest_ms:.2f} ms of CPU (medians of {len(checks)} logins; means "
        f"{mean_check_ms:.1f} and {mean_rest_ms:.2f} ms): bcrypt is "
        f"{mean_check_ms / (mean_check_ms + mean_rest_ms):.1%} of the app's CPU a login"
    )


def fetch_api(url: str, *, authorization: str = "", data: str | None = None) -> Reply:
    """GET (or POST JSON `data` to) an API URL; return its reply."""
    request = urllib.request.Request(url, data=data.encode() if data is not None else None)
    if authorization:
        request.add_header("Authorization", authorization)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our server
            return Reply(response.status, response.read().decode(), response.headers)
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode(), error.headers)


def es256_costs(tries: int = 2000) -> str:
    """Time one ES256 signature and one verification of an access token (this process).

    The first verification of a token checks its signature; a process that
    sees the same token again (an app's next request) finds it remembered.
    """
    import uuid

    from webapp.security import access_tokens

    remembered = access_tokens._keys().verified
    start = time.perf_counter()
    for _ in range(tries):
        token, _ = access_tokens.issue(uuid.uuid4(), 1, ["pwd"])
    signed = time.perf_counter()
    for _ in range(tries):
        remembered.clear()
        access_tokens.verify(token)
    verified = time.perf_counter()
    for _ in range(tries):
        access_tokens.verify(token)
    again = time.perf_counter()
    sign_us = (signed - start) / tries * 1e6
    verify_us = (verified - signed) / tries * 1e6
    again_us = (again - verified) / tries * 1e6
    return (
        f"ES256 per token: issue (sign) {sign_us:.0f} µs, first verify {verify_us:.0f} µs, "
        f"verify of a token seen before {again_us:.0f} µs"
    )


def set_cookies(client, header: str) -> None:
    for part in header.split("; "):
        name, _, value = part.partition("=")
        client.set_cookie(name, value)


# --- the run ------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="benchmark on PostgreSQL")
    parser.add_argument("--database-url", default=DEFAULT_PG_URL, help="PostgreSQL URL")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument(
        "--rounds", type=int, default=3, help="wrk runs per scenario (the median is shown)"
    )
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--users", type=int, default=USERS_FOR_ADMIN, help="users for /admin")
    parser.add_argument("--only", default="", help="comma-separated scenario numbers to run")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    only = set(filter(None, args.only.split(",")))

    def wanted(number: str) -> bool:
        return not only or number in only or number[0] in only

    work = Path(tempfile.mkdtemp(prefix="keystone-bench-"))
    log = work / "gunicorn.log"
    if args.postgres:
        global COUNT_POSTGRES
        COUNT_POSTGRES = True
        db_url = args.database_url
        prepare_postgres(db_url)
        db_name = "PostgreSQL " + db_url.rsplit("/", 1)[-1]
    else:
        db_url = f"sqlite:///{work / 'bench.db'}"
        db_name = "SQLite"
    env = app_environment(db_url)
    print(f"== database: {db_name}; logs in {work}", flush=True)
    migrate(env)

    import seed

    here = InProcess(env)
    t0 = time.monotonic()
    accounts = seed.base_accounts()
    seed.other_devices(accounts["devices"], 49)
    if wanted("6") and here.has_endpoint("admin.users"):
        seed.many_users(args.users)
    print(f"== seeded accounts in {time.monotonic() - t0:.1f} s", flush=True)
    cookies = {
        key: here.session_cookie(user.username)
        for key, user in accounts.items()
        if key in {"session", "devices", "admin"}
    }

    plain_env = dict(env)
    rows: list[Row] = []
    with gunicorn("plain_app:app", plain_env, log, args.workers) as plain:
        plain_before = rounds(args, lambda _: wrk(plain, "/", args))
    print(f"== plain Flask page: {plain_before.rps:.0f} req/s", flush=True)

    with gunicorn("wsgi:app", env, log, args.workers) as base:
        if wanted("1"):
            row = Row("1", "GET /login (anonymous)", target=">= 0.40")
            reply = fetch(base + "/login")
            assert reply.status == 200 and CSRF_RE.search(reply.text), reply.status
            row.load = rounds(args, lambda _: wrk(base, "/login", args), note=row.notes)
            row.queries = here.count(lambda c: c.get("/login"))
            rows.append(row)

        if wanted("2"):
            row = Row("2", "GET /account (session)", target=">= 0.45")
            reply = fetch(base + "/account", cookie=cookies["session"])
            assert reply.status == 200 and "Member since" in reply.text, reply.status
            row.load = rounds(
                args,
                lambda _: wrk(base, "/account", args, BENCH_COOKIE=cookies["session"]),
                note=row.notes,
            )
            row.queries = here.count(
                lambda c: (set_cookies(c, cookies["session"]), c.get("/account"))
            )
            rows.append(row)

        if wanted("3"):
            row = Row("3", "GET /account (remember cookie, rotated)", target=">= 0.35")
            # Enough fresh tokens for the run at up to 0.6 of the plain page (the note
            # below says if the run ran out).
            needed = int(plain_before.rps * args.duration * 0.6) + 200
            t0 = time.monotonic()
            tokens = seed.remember_tokens(needed * args.rounds)
            print(
                f"== created {needed * args.rounds} remembered devices "
                f"in {time.monotonic() - t0:.1f} s",
                flush=True,
            )
            # Each round gets its own tokens: a token shown twice is a theft.
            token_files = []
            for i in range(args.rounds):
                token_file = work / f"remember-cookies-{i}.txt"
                mine = tokens[i * needed : (i + 1) * needed]
                token_file.write_text("".join(here.remember_cookie(t) + "\n" for t in mine))
                token_files.append(token_file)
            probe = seed.remember_tokens(2, prefix="probe-remember")
            reply = fetch(base + "/account", cookie=here.remember_cookie(probe[0]))
            remember_name = here.app.config["REMEMBER_DEVICE_COOKIE_NAME"]
            assert reply.status == 200 and "Member since" in reply.text, reply.status
            assert f"{remember_name}=" in reply.headers.get("Set-Cookie", ""), "no rotation"
            row.load = rounds(
                args,
                lambda i: wrk(base, "/account", args, BENCH_COOKIE_FILE=str(token_files[i])),
                note=row.notes,
            )
            row.queries = here.count(
                lambda c: (
                    set_cookies(c, here.remember_cookie(probe[1])),
                    c.get("/account"),
                ),
                warm=False,
            )
            rotated = seed.rotated_devices()
            if row.load.exhausted:
                row.notes.append(f"ran out of fresh tokens {row.load.exhausted} times")
            if rotated < row.load.requests:
                row.notes.append(f"only {rotated} rotations for {row.load.requests} requests")
            else:
                row.notes.append(f"{rotated} tokens rotated for {row.load.requests} requests")
            rows.append(row)

        if wanted("3"):
            row = Row(
                "3b",
                "GET /account (remember cookie, grace path)",
                target="1 query, no write",
            )
            # The secret a rotation just replaced, shown again within the grace
            # period (a browser's racing requests): signed in provisionally,
            # handed the current secret back, with no write.
            grace = here.app.config["REMEMBER_GRACE_SECONDS"]
            assert args.duration * args.rounds < grace - 5, (
                "the grace-path rounds must end within the grace period"
            )
            old = seed.remember_tokens(1, prefix="grace-remember")[0]
            first = fetch(base + "/account", cookie=here.remember_cookie(old))
            assert first.status == 200, first.status
            again = fetch(base + "/account", cookie=here.remember_cookie(old))
            assert again.status == 200 and "Member since" in again.text, again.status
            rotated_before = seed.rotated_devices(prefix="grace-remember")
            row.load = rounds(
                args,
                lambda _: wrk(base, "/account", args, BENCH_COOKIE=here.remember_cookie(old)),
                note=row.notes,
            )
            assert seed.rotated_devices(prefix="grace-remember") == rotated_before
            after = fetch(base + "/account", cookie=here.remember_cookie(old))
            assert after.status == 200 and "Member since" in after.text, "the grace path failed"
            row.queries = here.count(
                lambda c: (set_cookies(c, here.remember_cookie(old)), c.get("/account")),
                warm=False,
            )
            writes = here.count_writes(
                lambda c: (set_cookies(c, here.remember_cookie(old)), c.get("/account"))
            )
            row.met = row.queries <= 1 and writes == 0
            row.notes.append(
                f"{writes} writes a request; still signed in after {row.load.requests} requests "
                f"within the {grace} s grace period (no theft alarm)"
            )
            rows.append(row)

        if wanted("4"):
            row = Row("4", "POST /login (bcrypt cost 12)", target=">= 0.96 of ceiling")
            # A server of its own, whose workers time each login's bcrypt check
            # and the rest of its CPU (bench/login_probe.py).
            probe_file = work / "login-probe.jsonl"
            probe_env = {**env, "BENCH_LOGIN_PROBE_FILE": str(probe_file)}
            with gunicorn(
                "wsgi:app", probe_env, log, args.workers, config=BENCH / "login_probe.py"
            ) as login_base:
                # One anonymous session and its CSRF token serve every login: the
                # session is a signed cookie, and the token has no time limit.
                reply = fetch(login_base + "/login")
                anon_cookie = reply.headers.get("Set-Cookie").split(";", 1)[0]
                body = urllib.parse.urlencode(
                    {
                        "csrf_token": CSRF_RE.search(reply.text).group(1),
                        "identifier": "bench-login",
                        "password": seed.PASSWORD,
                    }
                )
                check = fetch(login_base + "/login", cookie=anon_cookie, data=body)
                assert check.status == 302 and check.headers["Location"].endswith("/account"), (
                    check.status
                )
                before = seed.devices_of("bench-login")
                # The ceiling's check, timed just before and just after the
                # row: one probe minutes later moved by ±3 % from run to run.
                bcrypt_times = here.bcrypt_times()
                row.load = rounds(
                    args,
                    lambda _: wrk(
                        login_base,
                        "/login",
                        args,
                        BENCH_METHOD="POST",
                        BENCH_BODY=body,
                        BENCH_COOKIE=anon_cookie,
                        duration=str(args.duration * 2),
                        connections=str(args.workers * 2),
                    ),
                    note=row.notes,
                )
                settle(login_base)
                bcrypt_times += here.bcrypt_times()
                bcrypt_parallel_s = here.bcrypt_parallel_seconds(os.cpu_count() or 1)
            logins = seed.devices_of("bench-login") - before
            row.notes.append(f"{logins} sign-ins stored for {row.load.requests} requests")
            row.notes.append(login_probe_note(probe_file))
            row.queries = here.count_login("bench-login")
            rows.append(row)

        if wanted("5"):
            row = Row("5", "GET /account/devices (50 devices)", target=">= 0.20")
            reply = fetch(base + "/account/devices", cookie=cookies["devices"])
            assert reply.status == 200 and "This device" in reply.text, reply.status
            shown = reply.text.count(">Revoke<")
            row.notes.append(f"the page lists {shown + 1} devices")
            row.load = rounds(
                args,
                lambda _: wrk(base, "/account/devices", args, BENCH_COOKIE=cookies["devices"]),
                note=row.notes,
            )
            row.queries = here.count(
                lambda c: (set_cookies(c, cookies["devices"]), c.get("/account/devices"))
            )
            rows.append(row)

        if wanted("6"):
            for number, path, name in (
                ("6a", "/admin/users", f"GET /admin/users page 1 ({args.users:,} users)"),
                ("6b", f"/admin/users?q={SEARCH_TERM}", f"GET /admin/users?q={SEARCH_TERM}"),
            ):
                row = Row(number, name, target="p95 < 50 ms")
                if not here.has_endpoint("admin.users"):
                    row.notes.append("the admin users page does not exist yet")
                    rows.append(row)
                    continue
                reply = fetch(base + path, cookie=cookies["admin"])
                assert reply.status == 200 and "member" in reply.text, reply.status
                # One connection per worker: the latency of a request, not of a queue.
                row.load = rounds(
                    args,
                    lambda _, path=path: wrk(
                        base,
                        path,
                        args,
                        BENCH_COOKIE=cookies["admin"],
                        connections=str(args.workers),
                    ),
                    note=row.notes,
                )
                row.queries = here.count(
                    lambda c, path=path: (set_cookies(c, cookies["admin"]), c.get(path))
                )
                row.met = row.load.p95_ms < 50
                rows.append(row)

        if wanted("7"):
            row = Row("7", "GET /api/v1/me (bearer token)", target=">= 0.55")
            bearer = f"Bearer {here.access_token('bench')}"
            reply = fetch_api(base + "/api/v1/me", authorization=bearer)
            assert reply.status == 200 and json.loads(reply.text)["username"] == "bench", (
                reply.status
            )
            row.load = rounds(
                args,
                lambda _: wrk(base, "/api/v1/me", args, BENCH_AUTHORIZATION=bearer),
                note=row.notes,
            )
            row.queries = here.count(
                lambda c: c.get("/api/v1/me", headers={"Authorization": bearer})
            )
            row.notes.append(es256_costs())
            rows.append(row)

        if wanted("8"):
            row = Row("8", "POST /api/v1/auth/refresh (rotated)", target=">= 0.35")
            needed = int(plain_before.rps * args.duration * 0.6) + 200
            tokens = seed.remember_tokens(needed * args.rounds, prefix="refresh", kind="app")
            # Each round gets its own refresh tokens: one shown twice is a theft.
            body_files = []
            for i in range(args.rounds):
                body_file = work / f"refresh-bodies-{i}.txt"
                mine = tokens[i * needed : (i + 1) * needed]
                body_file.write_text("".join(json.dumps({"refresh_token": t}) + "\n" for t in mine))
                body_files.append(body_file)
            probe = seed.remember_tokens(2, prefix="probe-refresh", kind="app")
            reply = fetch_api(
                base + "/api/v1/auth/refresh", data=json.dumps({"refresh_token": probe[0]})
            )
            assert reply.status == 200 and "access_token" in reply.text, reply.status
            row.load = rounds(
                args,
                lambda i: wrk(
                    base,
                    "/api/v1/auth/refresh",
                    args,
                    BENCH_METHOD="POST",
                    BENCH_COOKIE_FILE=str(body_files[i]),
                    BENCH_LINES_ARE="body",
                    BENCH_CONTENT_TYPE="application/json",
                ),
                note=row.notes,
            )
            row.queries = here.count(
                lambda c: c.post("/api/v1/auth/refresh", json={"refresh_token": probe[1]}),
                warm=False,
            )
            rotated = seed.rotated_devices(prefix="refresh")
            if row.load.exhausted:
                row.notes.append(f"ran out of fresh tokens {row.load.exhausted} times")
            row.notes.append(f"{rotated} refresh tokens rotated for {row.load.requests} requests")
            rows.append(row)

    with gunicorn("plain_app:app", plain_env, log, args.workers) as plain:
        plain_after = rounds(args, lambda _: wrk(plain, "/", args))
    plain_rps = (plain_before.rps + plain_after.rps) / 2
    cores = os.cpu_count() or 1
    if not wanted("4"):
        bcrypt_times = here.bcrypt_times()
        bcrypt_parallel_s = here.bcrypt_parallel_seconds(cores)
    bcrypt_s = statistics.median(bcrypt_times)
    half = len(bcrypt_times) // 2
    bcrypt_spread = (
        f"median of {len(bcrypt_times)} checks: {statistics.median(bcrypt_times[:half]) * 1000:.0f}"
        f" ms just before the login row, {statistics.median(bcrypt_times[half:]) * 1000:.0f} "
        "ms just after"
        if wanted("4")
        else f"median of {len(bcrypt_times)} checks"
    )
    ceiling = cores / bcrypt_s
    parallel_ceiling = cores / bcrypt_parallel_s

    for row in rows:
        if row.load is None or row.number.startswith("6"):
            continue
        if row.number == "4":
            row.ratio = row.load.rps / ceiling
            row.met = row.ratio >= 0.96
            row.notes.append(
                f"{row.load.rps / parallel_ceiling:.2f} of the measured parallel ceiling "
                f"({parallel_ceiling:.2f} logins/s: {cores} checks at once take "
                f"{bcrypt_parallel_s * 1000:.0f} ms each)"
            )
        elif row.number == "3b":
            row.ratio = row.load.rps / plain_rps
        else:
            row.ratio = row.load.rps / plain_rps
            row.met = row.ratio >= float(row.target.split()[-1])
        if row.load.errors:
            row.notes.append(f"{row.load.errors} socket or HTTP errors")
            row.met = False

    header = [
        f"Keystone benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {db_name}",
        f"Machine: {machine()}",
        f"gunicorn {args.workers} sync workers; wrk {args.threads} threads, "
        f"{args.connections} connections, {args.duration} s a run, "
        f"median of {args.rounds} rounds "
        f"(login: {args.workers * 2} connections, {args.duration * 2} s; "
        f"admin: {args.workers} connections)",
        f"Plain Flask page: {plain_before.rps:.0f} req/s before, {plain_after.rps:.0f} after, "
        f"mean {plain_rps:.0f}",
        f"bcrypt cost 12: {bcrypt_s * 1000:.0f} ms a check ({bcrypt_spread}); "
        f"ceiling {cores} cores / "
        f"{bcrypt_s * 1000:.0f} ms = {ceiling:.2f} logins/s; with {cores} checks at once "
        f"each takes {bcrypt_parallel_s * 1000:.0f} ms = {parallel_ceiling:.2f} logins/s",
    ]
    table = render(rows, header)
    print()
    print(table)
    if args.markdown:
        args.markdown.write_text(table + "\n")
    here.ctx.pop()
    shutil.rmtree(work, ignore_errors=True)
    missed = [row.number for row in rows if row.met is False]
    if missed:
        print(f"\nTargets missed: {', '.join(missed)} (see bench/RESULTS.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
