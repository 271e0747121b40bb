"""Signup, login, logout (and password reset)."""

from webapp.auth.routes import bp

__all__ = ["bp"]
