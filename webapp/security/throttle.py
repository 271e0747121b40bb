"""Per-account backoff: consecutive failures for one identifier make it wait.

After BACKOFF_THRESHOLD failures in a row for one normalized identifier
(what was typed, known account or not, so a stranger learns nothing), each
further attempt for it waits BACKOFF_BASE_SECONDS, doubling with every new
failure, at most BACKOFF_MAX_SECONDS. The wait always ends, so a stranger
can slow an account down but never lock it for good, and a password reset
works during it. A success clears the count.

The counters live in the rate-limit storage (the `limits` library, from
RATELIMIT_STORAGE_URI), so processes sharing Redis share them; the backoff
stays on when RATELIMIT_ENABLED=0 turns the per-IP limits off.

Storage keys hold no identifier, only its keyed hash. The end of a wait is
stored as a timestamp of our clock, not left to the storage's expiry, so
every backend behaves the same; each wait is written once, under the
failure count that started it, by the one process whose increment reached
that count.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
from datetime import UTC, datetime

from flask import Flask, current_app
from limits import parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from webapp.security.identity import canonical_identifier

logger = logging.getLogger("webapp.throttle")

EXTENSION_KEY = "webapp.throttle"
PREFIX = "backoff"


class Throttled(Exception):
    """Attempts for this identifier must wait until `until`."""

    def __init__(self, until: float) -> None:
        super().__init__("throttled")
        self.until = until

    @property
    def until_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.until, UTC)

    @property
    def retry_after(self) -> int:
        """Return the seconds left to wait, at least 1."""
        return max(1, math.ceil(self.until - time.time()))

    @property
    def message(self) -> str:
        minutes = math.ceil(self.retry_after / 60)
        when = self.until_datetime.strftime("%H:%M UTC")
        span = "1 minute" if minutes == 1 else f"{minutes} minutes"
        return (
            "Too many failed attempts. For your security, try again "
            f"in {span} (after {when}), or reset your password."
        )


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION_KEY] = storage_from_string(app.config["RATELIMIT_STORAGE_URI"])


def _storage() -> Storage:
    return current_app.extensions[EXTENSION_KEY]


def _key(identifier: str) -> str:
    """Return the storage key of an identifier: a keyed hash, never the text."""
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    canonical = canonical_identifier(identifier).encode("utf-8")
    return hmac.new(secret, canonical, hashlib.sha256).hexdigest()[:32]


def _wait_seconds(failures: int) -> int:
    """Return how long to wait after `failures` consecutive failures."""
    config = current_app.config
    over = failures - config["BACKOFF_THRESHOLD"]
    if over < 0:
        return 0
    return min(config["BACKOFF_BASE_SECONDS"] * 2 ** min(over, 30), config["BACKOFF_MAX_SECONDS"])


def locked_until(identifier: str) -> float | None:
    """Return when attempts for `identifier` may resume, or None if they may now."""
    key = _key(identifier)
    try:
        storage = _storage()
        failures = storage.get(f"{PREFIX}:fails:{key}")
        if failures < current_app.config["BACKOFF_THRESHOLD"]:
            return None
        until = storage.get(f"{PREFIX}:until:{key}:{failures}")
    except Exception:
        # Fail open: an outage of the storage must not stop every login;
        # bcrypt and the per-IP limits still slow guessing down.
        logger.exception("backoff storage unavailable")
        return None
    now = time.time()
    if until <= now:
        return None
    return min(float(until), now + current_app.config["BACKOFF_MAX_SECONDS"])


def check(identifier: str) -> None:
    """Raise Throttled if attempts for `identifier` must wait."""
    until = locked_until(identifier)
    if until is not None:
        raise Throttled(until)


def failed(identifier: str) -> None:
    """Count a failed attempt; from the threshold on, start a wait."""
    key = _key(identifier)
    config = current_app.config
    try:
        storage = _storage()
        failures = storage.incr(f"{PREFIX}:fails:{key}", config["BACKOFF_MEMORY_SECONDS"])
        wait = _wait_seconds(failures)
        if wait:
            until_key = f"{PREFIX}:until:{key}:{failures}"
            # A key left from before the last success would add up: drop it.
            storage.clear(until_key)
            storage.incr(until_key, wait + 60, amount=math.ceil(time.time()) + wait)
    except Exception:
        logger.exception("backoff storage unavailable")


def succeeded(*identifiers: str) -> None:
    """Forget the failures of each identifier (a login or a password reset)."""
    try:
        storage = _storage()
        for identifier in identifiers:
            storage.clear(f"{PREFIX}:fails:{_key(identifier)}")
    except Exception:
        logger.exception("backoff storage unavailable")


def allow_reset_mail(email: str) -> bool:
    """Count a reset mail to `email`; return whether it is within RESET_MAIL_LIMIT."""
    limit = parse(current_app.config["RESET_MAIL_LIMIT"])
    try:
        return FixedWindowRateLimiter(_storage()).hit(limit, "reset-mail", _key(email))
    except Exception:
        logger.exception("backoff storage unavailable")
        return True


def allow_address_mail(kind: str, email: str, limit: str) -> bool:
    """Count a mail of `kind` to `email`; return whether it is within `limit`."""
    try:
        return FixedWindowRateLimiter(_storage()).hit(parse(limit), f"mail-{kind}", _key(email))
    except Exception:
        logger.exception("backoff storage unavailable")
        return True
