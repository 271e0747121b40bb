"""Profile one benchmark scenario in-process: CPU time per request, and a pyinstrument tree.

    .venv/bin/python bench/profile.py account          # CPU ms per request
    .venv/bin/python bench/profile.py remember --tree  # and where the time goes

Scenarios: plain, login-page, login, account, remember, grace, devices, admin-users, admin-search,
api-me, api-refresh.
CPU time (not wall time) is measured so that other load on the machine
disturbs the numbers less; compare before and after a change on one machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402
import seed  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--tree", action="store_true", help="print a pyinstrument call tree")
    parser.add_argument(
        "--all-frames", action="store_true", help="with --tree: show library frames too"
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument(
        "--cprofile",
        action="store_true",
        help="print cProfile's top functions (own and total time)",
    )
    parser.add_argument(
        "--calls",
        action="store_true",
        help="count Python function calls per request (steady under other load, unlike time)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="keystone-profile-"))
    env = run.app_environment(f"sqlite:///{work / 'profile.db'}")
    run.migrate(env)
    here = run.InProcess(env)
    accounts = seed.base_accounts()
    client = here.client()
    name = args.scenario
    if name == "plain":
        import plain_app

        plain = plain_app.app.test_client()

        def send():
            return plain.get("/")
    elif name == "login-page":

        def send():
            return client.get("/login")
    elif name == "account":
        run.set_cookies(client, here.session_cookie("bench"))

        def send():
            return client.get("/account")
    elif name == "remember":
        tokens = iter(seed.remember_tokens(args.requests + 50))

        def send():
            fresh = here.client()
            run.set_cookies(fresh, here.remember_cookie(next(tokens)))
            return fresh.get("/account")
    elif name == "grace":
        # The secret a rotation just replaced, again within the grace period.
        old = seed.remember_tokens(1, prefix="grace-remember")[0]
        rotate = here.client()
        run.set_cookies(rotate, here.remember_cookie(old))
        assert rotate.get("/account").status_code == 200

        def send():
            fresh = here.client()
            run.set_cookies(fresh, here.remember_cookie(old))
            return fresh.get("/account")
    elif name == "login":
        # Run with BENCH_BCRYPT_ROUNDS=4 to see the work around the bcrypt check.
        # BENCH_ALERTS=1: every login mails the new-browser alert (not only the
        # first NEW_BROWSER_ALERTS_PER_HOUR of the account's hour).
        if os.environ.get("BENCH_ALERTS") == "1":
            here.app.config["NEW_BROWSER_ALERTS_PER_HOUR"] = 10**9
        # As in the benchmark: one anonymous session and its token serve every login.
        token = run.CSRF_RE.search(client.get("/login").get_data(as_text=True)).group(1)
        anonymous = client.get_cookie("session").value
        form = {"csrf_token": token, "identifier": "bench-login", "password": seed.PASSWORD}

        # BENCH_KNOWN_BROWSER=1: the browser cookie of an earlier sign-in comes back.
        browser = None
        if os.environ.get("BENCH_KNOWN_BROWSER") == "1":
            first = here.client()
            first.set_cookie("session", anonymous)
            first.post("/login", data=form)
            cookie_name = here.app.config["KNOWN_BROWSER_COOKIE_NAME"]
            browser = (cookie_name, first.get_cookie(cookie_name).value)

        def send():
            fresh = here.client()
            fresh.set_cookie("session", anonymous)
            if browser:
                fresh.set_cookie(*browser)
            return fresh.post("/login", data=form)
    elif name == "devices":
        seed.other_devices(accounts["devices"], 49)
        run.set_cookies(client, here.session_cookie("devices50"))

        def send():
            return client.get("/account/devices")
    elif name in {"admin-users", "admin-search"}:
        seed.many_users(args.users)
        run.set_cookies(client, here.session_cookie("bench-admin"))
        path = "/admin/users" if name == "admin-users" else f"/admin/users?q={run.SEARCH_TERM}"

        def send():
            return client.get(path)
    elif name == "api-me":
        bearer = {"Authorization": f"Bearer {here.access_token('bench')}"}

        def send():
            return client.get("/api/v1/me", headers=bearer)
    elif name == "api-refresh":
        refresh_tokens = iter(seed.remember_tokens(args.requests + 50, prefix="r", kind="app"))

        def send():
            body = {"refresh_token": next(refresh_tokens)}
            return here.client().post("/api/v1/auth/refresh", json=body)
    else:
        parser.error(f"unknown scenario {name}")

    for _ in range(20):
        response = send()
        assert response.status_code in {200, 302}, response.status_code
    if args.calls:
        calls = 0

        def count(frame, event, arg):
            nonlocal calls
            if event in {"call", "c_call"}:
                calls += 1

        sys.setprofile(count)
        for _ in range(50):
            send()
        sys.setprofile(None)
        print(f"{name}: {calls / 50:.0f} Python and C function calls per request")
        return 0
    if args.cprofile:
        # This file is named profile.py: hide it while cProfile imports the stdlib's.
        here_dir = str(Path(__file__).resolve().parent)
        saved = sys.path[:]
        sys.path[:] = [p for p in sys.path if p not in {here_dir, ""}]
        sys.modules.pop("profile", None)
        import cProfile
        import pstats

        sys.path[:] = saved

        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.requests):
            send()
        profile.disable()
        stats = pstats.Stats(profile).strip_dirs()
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats(60)
        return 0
    profiler = None
    if args.tree:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005)
        profiler.start()
    samples = []
    for _ in range(args.requests):
        start = time.process_time()
        send()
        samples.append(time.process_time() - start)
    if profiler:
        profiler.stop()
        print(profiler.output_text(unicode=False, color=False, show_all=args.all_frames))
    print(
        f"{name}: CPU per request: median {statistics.median(samples) * 1000:.2f} ms, "
        f"mean {statistics.mean(samples) * 1000:.2f} ms over {len(samples)} requests"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
