"""The 30,000 most common passwords, from zxcvbn's frequency lists."""

from __future__ import annotations

import functools


@functools.cache
def _common() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def is_common(password: str) -> bool:
    """Return whether the password, ignoring case, is a common one."""
    return password.casefold() in _common()
