"""Signup, login, logout and password reset."""

from webapp.auth.passkeys import register_passkey_views
from webapp.auth.reset import register_reset_views
from webapp.auth.routes import bp

register_reset_views(bp)
register_passkey_views(bp)

__all__ = ["bp"]
