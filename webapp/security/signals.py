"""Signals the mechanism sends when the world must hear of something.

The mechanism never mails or audits; the account domain connects to these
(`webapp.domain.init_app`). Blinker ships with Flask.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# A replaced remember token came back after its grace period: its device was
# revoked. Sent with the app as sender and `device=` the revoked row, before
# the commit, so handlers add to the same transaction.
token_theft_detected = _signals.signal("token-theft-detected")

# A user signed in through a new device (`sign_in`: a password, a passkey...;
# not a remember-cookie restore). Sent with the app as sender, `user=` and
# `device=` (flushed, so it has its id), before the view commits, so
# handlers add to the same transaction.
user_signed_in = _signals.signal("user-signed-in")
