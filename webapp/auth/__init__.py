"""Signup, login, logout, password reset and the links mailed to an address.

The blueprint is defined in `routes.py`; the other modules add their views
to it with `@bp.route` when imported here.
"""

from webapp.auth import email, not_me, passkeys, reset  # noqa: F401 (their views)
from webapp.auth.routes import bp

__all__ = ["bp"]
