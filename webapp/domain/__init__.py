"""The account domain: what more than one page needs to know about users.

The rules of accounts that the pages (the `account`, `auth` and `admin`
blueprints) share. The layers run one
way (see docs/architecture.md and `lint-imports`):

    pages (auth, account, admin, health, cli)
      -> domain (this package)
        -> security (the mechanism) and mail
          -> extensions, models

- `users`: creating, finding and deleting accounts.
- `credentials`: checking, confirming, changing and resetting passwords.
- `device_list`: describing a user's devices for display.
- `notices`: the security notices we mail, and links under PUBLIC_URL.
- `audit`: the audit record, and each user's security activity beside it.
- `activity`: the activity page's events in plain words, and their purge.
- `new_browser`: noting each account's browsers, the new-sign-in mail and
  its "This wasn't me" link.
- `pages`: keyset pagination, newest first.
- `recovery`: taking an account back, the one rule every recovery action
  goes through.

The mechanism below never mails or audits: it returns outcomes or sends
signals (`webapp.security.signals`), and `init_app` connects the handlers
here that turn them into mail and audit rows.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Connect the domain's handlers to the mechanism's signals."""
    from webapp.domain import new_browser, notices

    notices.connect_signals(app)
    new_browser.connect_signals(app)
