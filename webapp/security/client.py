"""Who is asking: the client's address and user agent."""

from __future__ import annotations

import functools
import ipaddress

from flask import request


@functools.lru_cache(maxsize=4096)
def _valid_address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def client_ip() -> str | None:
    """Return the client address; ProxyFix sets it from TRUSTED_PROXIES hops only.

    A forwarded value that is not an IP address (a proxy passes on whatever
    the client wrote) gives None: it is stored nowhere and located nowhere.
    """
    value = request.remote_addr
    if not value or len(value) > 45:
        return None
    return _valid_address(value)


def user_agent() -> str | None:
    """Return the User-Agent header, without NUL characters (text columns refuse them)."""
    return request.headers.get("User-Agent", "").replace("\x00", "") or None
