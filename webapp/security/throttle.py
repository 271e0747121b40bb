"""Per-account backoff: consecutive failures make the next attempts wait.

What is counted. When the identifier typed names an account, failures
count against the account (its id), whatever spelling or identifier was
used (username or email, any case, any Unicode variant the lookup folds);
for an unknown identifier, against the canonical form the lookup uses. So
a stranger learns nothing, and no spelling dodges the count.

Two buckets per attempt, so a stranger cannot lock the owner out:
- (account, client address): after BACKOFF_THRESHOLD failures in a row
  from one address, attempts from that address wait BACKOFF_BASE_SECONDS,
  doubling with every new failure, at most BACKOFF_MAX_SECONDS. The owner,
  signing in from their own address, is not slowed by a stranger's guesses.
- the account alone: a higher ceiling, BACKOFF_ACCOUNT_THRESHOLD failures
  in a row from any addresses, slows every address the same way, so
  guessing spread over many addresses stays bounded (well under 100 an
  hour). Reaching it takes that many requests from several addresses.
We chose this over "known browsers are exempt" (the other common design)
because it needs no state in the browser and protects the owner on a new
browser too; Keycloak's per-user counting and Devise's unlock-on-reset
both informed it: the wait always ends (no permanent lockout) and a
password reset clears the account's count.

The counters live in the rate-limit storage (the `limits` library, from
RATELIMIT_STORAGE_URI), so processes sharing Redis share them; with the
default memory://, each process counts alone (production warns at start).
The backoff stays on when RATELIMIT_ENABLED=0 turns the per-IP limits off.

Storage keys hold no identifier or address, only a keyed hash. The end of
a wait is stored as a timestamp of our clock, not left to the storage's
expiry, so every backend behaves the same; each wait is written once, under
the failure count that started it, by the one process whose increment
reached that count.

Reset mail is limited per address by a short cooldown (RESET_MAIL_LIMIT,
one per 2 minutes), not an hourly cap a stranger could spend.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, current_app
from limits import parse
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter

from webapp.i18n import ngettext, reader_zone, zone_label
from webapp.security.identity import lookup_key

logger = logging.getLogger("webapp.throttle")

EXTENSION_KEY = "webapp.throttle"
# Flask-Limiter scopes of the per-IP limits that the pages and the token API
# share: /login and /api/v1/auth/token count together, and so on.
LOGIN_SCOPE = "login"
SECOND_STEP_SCOPE = "login-verify"
SIGNUP_SCOPE = "signup"
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
        """Say how long to wait, in the reader's language, with the time in their zone."""
        local = self.until_datetime.astimezone(reader_zone())
        when = local.strftime("%H:%M ") + zone_label(local)
        return ngettext(
            "Too many failed attempts. For your security, try again in %(num)d minute "
            "(after %(when)s), or reset your password.",
            "Too many failed attempts. For your security, try again in %(num)d minutes "
            "(after %(when)s), or reset your password.",
            math.ceil(self.retry_after / 60),
            when=when,
        )


def init_app(app: Flask) -> None:
    uri = app.config["RATELIMIT_STORAGE_URI"]
    app.extensions[EXTENSION_KEY] = storage_from_string(uri)
    if app.config["ENV_NAME"] == "production" and uri.startswith("memory://"):
        logger.warning(
            "RATELIMIT_STORAGE_URI is memory://: each process counts rate limits and "
            "the login backoff alone, so with several workers they are that many times "
            "looser. Point every process at one Redis (README, 'Deploying on PostgreSQL "
            "with several processes', step 5)."
        )


def _storage() -> Storage:
    return current_app.extensions[EXTENSION_KEY]


@dataclass(frozen=True)
class Bucket:
    """One failure counter: its storage key (a keyed hash) and its threshold."""

    key: str
    threshold: int


def _hash(text: str) -> str:
    """Return a storage key for `text`: a keyed hash, never the text."""
    secret = current_app.config["SECRET_KEY"].encode("utf-8")
    return hmac.new(secret, text.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def account_subject(user_id: uuid.UUID) -> str:
    """Name an existing account for the backoff: by id, however it was typed."""
    return f"user:{user_id}"


def identifier_subject(identifier: str) -> str:
    """Name an identifier that matches no account: its canonical lookup form."""
    return f"id:{lookup_key(identifier)}"


def buckets(subject: str, ip: str | None) -> list[Bucket]:
    """Return the counters an attempt on `subject` from `ip` is checked against."""
    config = current_app.config
    return [
        Bucket(_hash(f"{subject}|ip:{ip or '-'}"), config["BACKOFF_THRESHOLD"]),
        Bucket(_hash(subject), config["BACKOFF_ACCOUNT_THRESHOLD"]),
    ]


def _wait_seconds(failures: int, threshold: int) -> int:
    """Return how long to wait after `failures` consecutive failures."""
    config = current_app.config
    over = failures - threshold
    if over < 0:
        return 0
    return min(config["BACKOFF_BASE_SECONDS"] * 2 ** min(over, 30), config["BACKOFF_MAX_SECONDS"])


def _locked_until(bucket: Bucket) -> float | None:
    storage = _storage()
    failures = storage.get(f"{PREFIX}:fails:{bucket.key}")
    if failures < bucket.threshold:
        return None
    until = storage.get(f"{PREFIX}:until:{bucket.key}:{failures}")
    now = time.time()
    if until <= now:
        return None
    return min(float(until), now + current_app.config["BACKOFF_MAX_SECONDS"])


def locked_until(counters: list[Bucket]) -> float | None:
    """Return when attempts counted by `counters` may resume, or None if they may now."""
    try:
        waits = [until for bucket in counters if (until := _locked_until(bucket)) is not None]
    except Exception:
        # Fail open: an outage of the storage must not stop every login;
        # bcrypt and the per-IP limits still slow guessing down.
        logger.exception("backoff storage unavailable")
        return None
    return max(waits) if waits else None


def check(counters: list[Bucket]) -> None:
    """Raise Throttled if attempts counted by `counters` must wait."""
    until = locked_until(counters)
    if until is not None:
        raise Throttled(until)


def failed(counters: list[Bucket]) -> None:
    """Count a failed attempt in each counter; from its threshold on, start a wait."""
    config = current_app.config
    try:
        storage = _storage()
        for bucket in counters:
            memory = config["BACKOFF_MEMORY_SECONDS"]
            failures = storage.incr(f"{PREFIX}:fails:{bucket.key}", memory)
            wait = _wait_seconds(failures, bucket.threshold)
            if wait:
                until_key = f"{PREFIX}:until:{bucket.key}:{failures}"
                # A key left from before the last success would add up: drop it.
                storage.clear(until_key)
                storage.incr(until_key, wait + 60, amount=math.ceil(time.time()) + wait)
    except Exception:
        logger.exception("backoff storage unavailable")


def count_attempt(counters: list[Bucket]) -> None:
    """Count an attempt before checking it, then decide; raise Throttled when it must wait.

    `check` then `failed` lets simultaneous attempts all pass the check
    before any failure is counted. Here each attempt takes its number from
    one atomic increment first: the first `threshold` are checked, and each
    later one only once the wait its predecessor started has passed (a
    predecessor still in flight counts as waiting). So however many arrive
    at once, at most `threshold` codes are checked. A refused attempt gives
    its number back; a checked one keeps it (a wrong code needs no
    `failed`, a right one calls `succeeded`).
    """
    config = current_app.config
    memory = config["BACKOFF_MEMORY_SECONDS"]
    taken: list[str] = []
    try:
        storage = _storage()
        for bucket in counters:
            fails_key = f"{PREFIX}:fails:{bucket.key}"
            number = storage.incr(fails_key, memory)
            taken.append(fails_key)
            now = time.time()
            if number > bucket.threshold:
                until = storage.get(f"{PREFIX}:until:{bucket.key}:{number - 1}")
                if not until or until > now:
                    raise Throttled(float(until) if until else now + config["BACKOFF_BASE_SECONDS"])
            wait = _wait_seconds(number, bucket.threshold)
            if wait:
                # Written before the code is checked, so the next attempt waits for it.
                until_key = f"{PREFIX}:until:{bucket.key}:{number}"
                storage.clear(until_key)
                storage.incr(until_key, memory, amount=math.ceil(now) + wait)
    except Throttled:
        for fails_key in taken:
            storage.incr(fails_key, memory, amount=-1)
        raise
    except Exception:
        logger.exception("backoff storage unavailable")


def succeeded(counters: list[Bucket]) -> None:
    """Forget the failures in each counter (a login or a password reset)."""
    try:
        storage = _storage()
        for bucket in counters:
            storage.clear(f"{PREFIX}:fails:{bucket.key}")
    except Exception:
        logger.exception("backoff storage unavailable")


def allow_reset_mail(email: str) -> bool:
    """Count a reset mail to `email`; return whether it is within RESET_MAIL_LIMIT."""
    limit = parse(current_app.config["RESET_MAIL_LIMIT"])
    try:
        return FixedWindowRateLimiter(_storage()).hit(limit, "reset-mail", _hash(f"mail:{email}"))
    except Exception:
        logger.exception("backoff storage unavailable")
        return True


def allow_address_mail(kind: str, email: str, limit: str) -> bool:
    """Count a mail of `kind` to `email`; return whether it is within `limit`."""
    return allow_mail(kind, f"mail:{email}", limit)


def allow_mail(kind: str, subject: str, limit: str) -> bool:
    """Count a mail of `kind` asked for by or for `subject`; return whether it is within `limit`.

    Key each limit to what its requester owns (their account, their
    address), so that one person's requests never spend another's.
    """
    try:
        return FixedWindowRateLimiter(_storage()).hit(parse(limit), f"mail-{kind}", _hash(subject))
    except Exception:
        logger.exception("backoff storage unavailable")
        return True
