"""Signup, login, logout, password reset and the links mailed to an address."""

from webapp.auth.email import register_email_views
from webapp.auth.not_me import register_not_me_views
from webapp.auth.passkeys import register_passkey_views
from webapp.auth.reset import register_reset_views
from webapp.auth.routes import bp

register_reset_views(bp)
register_email_views(bp)
register_not_me_views(bp)
register_passkey_views(bp)

__all__ = ["bp"]
