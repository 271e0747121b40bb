"""The signed-in user's own pages: account, devices, password, deletion.

The blueprint is defined in `routes.py`; `passkeys.py` adds its views to
it with `@bp.route` when imported here.
"""

from webapp.account import passkeys  # noqa: F401 (its views)
from webapp.account.routes import bp

__all__ = ["bp"]
