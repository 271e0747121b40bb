"""Extension objects, created unbound and bound to the app in the factory."""

from flask import request
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_mailman import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from webapp.models.base import Base


def _client_key() -> str:
    """Key the per-IP limits by the client address ProxyFix trusts."""
    return request.remote_addr or "unknown"


# Objects stay readable after a commit: the touch of last_used_at commits
# mid-request, and reloading the signed-in user afterwards would cost queries.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
# Settings (storage, on/off, the limits themselves) come from RATELIMIT_* config.
limiter = Limiter(key_func=_client_key)
mail = Mail()
