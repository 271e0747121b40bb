"""Who is asking: the client's address and user agent."""

from __future__ import annotations

from flask import request


def client_ip() -> str | None:
    """Return the client address; ProxyFix sets it from TRUSTED_PROXIES hops only."""
    return request.remote_addr


def user_agent() -> str | None:
    """Return the User-Agent header, without NUL characters (text columns refuse them)."""
    return request.headers.get("User-Agent", "").replace("\x00", "") or None
