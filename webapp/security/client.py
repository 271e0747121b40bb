"""Who is asking: the client's address and user agent."""

from __future__ import annotations

from flask import request


def client_ip() -> str | None:
    """Return the client address; ProxyFix sets it from TRUSTED_PROXIES hops only."""
    return request.remote_addr


def user_agent() -> str | None:
    return request.headers.get("User-Agent") or None
