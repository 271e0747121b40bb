"""Views of the admin blueprint."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.before_request
@login_required
def require_admin() -> None:
    """Deny by default: only admins reach anything in this blueprint."""
    if not current_user.is_admin:
        abort(403)


@bp.get("/")
def index():
    """Show the admin home."""
    return render_template("admin/index.html")
