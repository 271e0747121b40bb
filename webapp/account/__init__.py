"""The signed-in user's own pages: account, devices, password, deletion."""

from webapp.account.routes import bp

__all__ = ["bp"]
