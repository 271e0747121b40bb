"""Signals the mechanism sends when the world must hear of something.

The mechanism never mails or audits; the account domain connects to these
(`webapp.accounts.init_app`). Blinker ships with Flask.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# A replaced remember token came back after its grace period: its device was
# revoked. Sent with the app as sender and `device=` the revoked row, before
# the commit, so handlers add to the same transaction.
token_theft_detected = _signals.signal("token-theft-detected")
