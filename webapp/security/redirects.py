"""Only local paths are followed after login: no open redirects."""

from __future__ import annotations

from urllib.parse import urlsplit


def safe_next(target: str | None) -> str | None:
    """Return `target` if it is a path on this site, else None.

    Browsers read a backslash as a slash and ignore leading control
    characters, so "/\\evil.io" or "\\t//evil.io" would leave the site.
    """
    if not target or len(target) > 2048:
        return None
    if any(ch == "\\" or ord(ch) < 0x21 or ord(ch) == 0x7F for ch in target):
        return None
    if not target.startswith("/") or target.startswith("//"):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target
