"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any


class ConfigError(RuntimeError):
    """The environment does not describe a runnable app."""


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {value!r}") from exc


def _development_secret_key(instance_path: Path) -> str:
    """Create a secret key in instance/ once and keep it across restarts."""
    key_file = instance_path / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def load_config(instance_path: str) -> dict[str, Any]:
    """Return the app's settings from the environment variables of the contract."""
    env = os.environ.get("WEBAPP_ENV", "development").strip() or "development"
    if env not in {"development", "production", "testing"}:
        raise ConfigError("WEBAPP_ENV must be development, production or testing")
    production = env == "production"
    instance = Path(instance_path)

    secret_key = os.environ.get("SECRET_KEY", "")
    if not secret_key:
        if production:
            raise ConfigError(
                "SECRET_KEY is required when WEBAPP_ENV=production: "
                "set it to a long random value shared by every process"
            )
        secret_key = _development_secret_key(instance)

    email_verification = os.environ.get("EMAIL_VERIFICATION", "").strip().lower() or "optional"
    if email_verification not in {"optional", "mandatory"}:
        raise ConfigError("EMAIL_VERIFICATION must be optional or mandatory")
    mail_worker = os.environ.get("MAIL_WORKER", "").strip().lower() or "thread"
    if mail_worker not in {"thread", "external"}:
        raise ConfigError("MAIL_WORKER must be thread or external")

    cookie_secure = _flag("COOKIE_SECURE", production)
    # The __Host- prefix pins a cookie to this host and path; browsers accept it
    # only with Secure, so plain-HTTP development uses unprefixed names.
    prefix = "__Host-" if cookie_secure else ""

    database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{instance / 'webapp.db'}"

    return {
        "ENV_NAME": env,
        "SECRET_KEY": secret_key,
        "SQLALCHEMY_DATABASE_URI": database_url,
        # A pooled connection to a database server can go stale (a restart, a
        # failover): test it before each request. An SQLite file cannot, and
        # the ping would cost a statement on every request.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": not database_url.startswith("sqlite")},
        "BCRYPT_ROUNDS": _int("BCRYPT_ROUNDS", 12),
        "COOKIE_SECURE": cookie_secure,
        "SESSION_COOKIE_NAME": f"{prefix}session",
        "SESSION_COOKIE_SECURE": cookie_secure,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_PATH": "/",
        # The signed session cookie itself expires with the browser; this caps
        # how long Flask accepts a replayed one (devices add the idle limit).
        "PERMANENT_SESSION_LIFETIME": 12 * 3600,
        "REMEMBER_DEVICE_COOKIE_NAME": f"{prefix}remember",
        "REMEMBER_DAYS": _int("REMEMBER_DAYS", 30),
        "REMEMBER_IDLE_DAYS": _int("REMEMBER_IDLE_DAYS", 14),
        "SESSION_IDLE_HOURS": _int("SESSION_IDLE_HOURS", 12),
        "SESSION_MAX_HOURS": _int("SESSION_MAX_HOURS", 12),
        "MAX_DEVICES_PER_USER": 100,
        "REMEMBER_GRACE_SECONDS": 60,
        "FRESH_MINUTES": 10,
        # Authenticator secrets are encrypted at rest with this Fernet key;
        # unset, one is derived from SECRET_KEY (HKDF), so rotating SECRET_KEY
        # would then lose every authenticator: set it in production.
        "MFA_ENCRYPTION_KEY": os.environ.get("MFA_ENCRYPTION_KEY", ""),
        # The second step of a login: how long it waits, how many wrong codes end it.
        "MFA_PENDING_SECONDS": 300,
        "MFA_MAX_ATTEMPTS": 5,
        "TRUSTED_PROXIES": _int("TRUSTED_PROXIES", 0),
        # Security activity (/account/activity) and the new-browser alert.
        "SECURITY_LOG_DAYS": _int("SECURITY_LOG_DAYS", 90),
        "GEOIP_MMDB_PATH": os.environ.get("GEOIP_MMDB_PATH", "").strip() or None,
        # Marks browsers an account has signed in from; random, not a credential.
        "KNOWN_BROWSER_COOKIE_NAME": f"{prefix}browser",
        "KNOWN_BROWSER_COOKIE_DAYS": 400,
        # A visitor's language from the footer's links (not a credential).
        "LANGUAGE_COOKIE_NAME": f"{prefix}language",
        "NEW_BROWSER_ALERTS_PER_HOUR": 5,
        "NOT_ME_LINK_DAYS": 7,
        # Per-IP limits (Flask-Limiter). memory:// counts per process; with
        # several processes or hosts, point every one at the same redis://.
        "RATELIMIT_ENABLED": _flag("RATELIMIT_ENABLED", True),
        "RATELIMIT_STORAGE_URI": os.environ.get("RATELIMIT_STORAGE_URI", "memory://"),
        "RATELIMIT_KEY_PREFIX": "keystone",
        "RATELIMIT_STRATEGY": "fixed-window",
        # A storage outage must not take the login page down with it: the
        # per-IP limits are skipped (and logged) until the storage is back.
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_HEADERS_ENABLED": False,
        "RATELIMIT_LOGIN": os.environ.get("RATELIMIT_LOGIN", "10 per minute;100 per hour"),
        "RATELIMIT_SIGNUP": os.environ.get("RATELIMIT_SIGNUP", "5 per minute;20 per hour"),
        "RATELIMIT_RESET": os.environ.get("RATELIMIT_RESET", "5 per minute;20 per hour"),
        # "Change email" per client address (the per-account limit is the domain's).
        "RATELIMIT_EMAIL_CHANGE": os.environ.get(
            "RATELIMIT_EMAIL_CHANGE", "5 per minute;20 per hour"
        ),
        # Per-account backoff (security/throttle.py), on whatever RATELIMIT_ENABLED
        # says: after BACKOFF_THRESHOLD consecutive failures for one identifier,
        # wait BACKOFF_BASE_SECONDS, doubling per further failure, at most
        # BACKOFF_MAX_SECONDS; failures are forgotten after BACKOFF_MEMORY_SECONDS.
        "BACKOFF_THRESHOLD": _int("BACKOFF_THRESHOLD", 5),
        "BACKOFF_BASE_SECONDS": _int("BACKOFF_BASE_SECONDS", 60),
        "BACKOFF_MAX_SECONDS": _int("BACKOFF_MAX_SECONDS", 15 * 60),
        "BACKOFF_MEMORY_SECONDS": _int("BACKOFF_MEMORY_SECONDS", 24 * 3600),
        # The threshold above counts per (account, client address); this one
        # counts the account from every address (see security/throttle.py).
        "BACKOFF_ACCOUNT_THRESHOLD": _int("BACKOFF_ACCOUNT_THRESHOLD", 50),
        # A cooldown per address, not a cap a stranger could spend for the owner.
        "RESET_MAIL_LIMIT": os.environ.get("RESET_MAIL_LIMIT", "1 per 2 minutes"),
        "RESET_TOKEN_MAX_AGE": _int("RESET_TOKEN_MAX_AGE", 3600),
        # optional: signup signs in at once, the address is confirmed later;
        # mandatory: no sign-in before it is (webapp/domain/addresses.py).
        "EMAIL_VERIFICATION": email_verification,
        # Links in mail, and the passkey relying party: its host is the RP ID
        # (browsers refuse an IP address there, hence localhost) and the URL
        # without a trailing slash the origin the browser must report.
        "PUBLIC_URL": os.environ.get("PUBLIC_URL", "http://localhost:5000").rstrip("/"),
        "MAIL_SERVER": os.environ.get("MAIL_SERVER", ""),
        "MAIL_PORT": _int("MAIL_PORT", 25),
        "MAIL_USE_TLS": _flag("MAIL_USE_TLS", False),
        "MAIL_USE_SSL": _flag("MAIL_USE_SSL", False),
        "MAIL_USERNAME": os.environ.get("MAIL_USERNAME", ""),
        "MAIL_PASSWORD": os.environ.get("MAIL_PASSWORD", ""),
        "MAIL_DEFAULT_SENDER": os.environ.get("MAIL_DEFAULT_SENDER", "webapp@localhost"),
        "MAIL_BACKEND": "smtp",
        # A hung SMTP server must not hold a mail worker forever.
        "MAIL_TIMEOUT": _int("MAIL_TIMEOUT", 10),
        # Mail is sent by a background worker, off the request path; under
        # WEBAPP_ENV=testing it is sent inline, so a test reads the delivered
        # mail right after the response and no worker outlives its test.
        "MAIL_SEND_SYNC": _flag("MAIL_SEND_SYNC", env == "testing"),
        "MAIL_WORKERS": _int("MAIL_WORKERS", 2),
        # Who delivers the outbox (webapp/mail.py): a thread in each app
        # process, or only `flask send-mail` workers.
        "MAIL_WORKER": mail_worker,
        "MAIL_RETRY_HOURS": _int("MAIL_RETRY_HOURS", 24),
        # How often a sender looks for mail it was not woken for.
        "MAIL_POLL_SECONDS": _int("MAIL_POLL_SECONDS", 5),
        # Under testing, due mail is delivered right after the commit that queued it.
        "MAIL_DELIVER_INLINE": _flag("MAIL_DELIVER_INLINE", env == "testing"),
        "MAX_CONTENT_LENGTH": 64 * 1024,
        # The token API for apps (webapp/api, security/access_tokens.py): the
        # ES256 signing key (PEM; required in production, made in instance/
        # in development), retired public keys that still verify, the access
        # tokens' lifetime, and the origins allowed to call it from a browser.
        "JWT_PRIVATE_KEY_FILE": os.environ.get("JWT_PRIVATE_KEY_FILE", "").strip() or None,
        "JWT_PRIVATE_KEY": os.environ.get("JWT_PRIVATE_KEY", "").strip() or None,
        "JWT_RETIRED_PUBLIC_KEYS_FILE": (
            os.environ.get("JWT_RETIRED_PUBLIC_KEYS_FILE", "").strip() or None
        ),
        "API_ACCESS_MINUTES": _int("API_ACCESS_MINUTES", 5),
        "API_CORS_ORIGINS": [
            origin.strip().rstrip("/")
            for origin in os.environ.get("API_CORS_ORIGINS", "").split(",")
            if origin.strip() and origin.strip() != "*"
        ],
        "WTF_CSRF_TIME_LIMIT": None,
        # Flask-Login's own remember cookie is never set (see security/devices.py);
        # naming it keeps an attacker-supplied one from meaning anything to us.
        "REMEMBER_COOKIE_NAME": "flask_login_remember_unused",
    }
