"""gunicorn hooks for the POST /login row: each login's CPU in the worker, bcrypt apart.

    gunicorn -c bench/login_probe.py ...   (BENCH_LOGIN_PROBE_FILE names the output)

The row's ratio divides by a bcrypt check timed in the idle bench process;
this says, from inside the workers under load, how long the check took
there and how much CPU the rest of the login took (thread CPU time from
`pre_request` to `post_request`, less the check). Each worker appends one
JSON line when it exits.
"""

from __future__ import annotations

import json
import os
import time

import bcrypt

_checkpw = bcrypt.checkpw
_request: dict[str, float] = {}
_checks: list[float] = []
_rest: list[float] = []


def _timed_checkpw(password: bytes, hashed: bytes) -> bool:
    start = time.thread_time()
    try:
        return _checkpw(password, hashed)
    finally:
        _request["check"] = _request.get("check", 0.0) + time.thread_time() - start


bcrypt.checkpw = _timed_checkpw


def pre_request(worker, req) -> None:
    _request.clear()
    _request["start"] = time.thread_time()


def post_request(worker, req, environ, resp) -> None:
    if req.method != "POST" or "check" not in _request:
        return
    total = time.thread_time() - _request["start"]
    _checks.append(_request["check"])
    _rest.append(total - _request["check"])


def worker_exit(server, worker) -> None:
    path = os.environ.get("BENCH_LOGIN_PROBE_FILE")
    if path and _checks:
        with open(path, "a") as out:
            out.write(json.dumps({"checks": _checks, "rest": _rest}) + "\n")
