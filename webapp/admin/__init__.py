"""The admin area: users, roles and the audit log."""

from webapp.admin.routes import bp

__all__ = ["bp"]
