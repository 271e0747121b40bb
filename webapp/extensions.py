"""Extension objects, created unbound and bound to the app in the factory."""

import contextlib
from collections.abc import Iterator

from flask import g, has_app_context, request
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_mailman import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSQLAlchemySession
from flask_wtf import CSRFProtect
from sqlalchemy.engine import Connection
from sqlalchemy.orm.attributes import instance_state

from webapp.models.base import Base


def _client_key() -> str:
    """Key the per-IP limits by the client address ProxyFix trusts."""
    return request.remote_addr or "unknown"


# Instances a request read before it had a session, for its session to adopt
# when it starts.
ADOPT_KEY = "_instances_to_adopt"


class Session(FlaskSQLAlchemySession):
    """Flask-SQLAlchemy's session, adopting what the request read before it existed.

    Every signed-in request reads its device, user and role on a pooled
    connection and builds the instances itself (security/devices.py): a page
    that only reads never needs a session. When the request does need one,
    the session adopts them on creation, so a view that changes the user and
    commits works as if the session had loaded it.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if has_app_context():
            for instance in g.pop(ADOPT_KEY, ()):
                # Detached with its identity key: persistent, no query, nothing to flush.
                self.add(instance)


def adopt(instances: list) -> list:
    """Hand instances built from a row (detached, keyed) to the request's session.

    At once if the request has a session (an instance it already holds
    wins, as it would for a query); otherwise when it creates one. Returns
    the instances to use.
    """
    if not db.session.registry.has():
        g.setdefault(ADOPT_KEY, []).extend(instances)
        return instances
    session = db.session()
    adopted = []
    for instance in instances:
        existing = session.identity_map.get(instance_state(instance).key)
        if existing is None:
            session.add(instance)
        adopted.append(existing if existing is not None else instance)
    return adopted


@contextlib.contextmanager
def read_connection() -> Iterator[Connection]:
    """Yield a connection for a read of plain columns.

    The request's session's, flushed, if it has one (it may hold changes
    not yet committed); otherwise a pooled connection of its own: with no
    session there is nothing unsaved to see, and none is created for a read.
    """
    if db.session.registry.has():
        db.session.flush()
        yield db.session.connection()
    else:
        with autocommit_connection() as connection:
            yield connection


def autocommit_connection() -> Connection:
    """Return a pooled connection for a single read, or a write that commits at once.

    On PostgreSQL it is in autocommit mode: no BEGIN before the statement
    and no COMMIT or ROLLBACK after it, two round trips to the server. On
    SQLite it is left as is: pysqlite begins a transaction only before a
    write anyway, and SQLAlchemy's switch to autocommit there costs more
    than it saves. Either way, `commit()` after a write is right.
    """
    connection = db.engine.connect()
    if connection.dialect.name == "sqlite":
        return connection
    return connection.execution_options(isolation_level="AUTOCOMMIT")


# Objects stay readable after a commit: the touch of last_used_at commits
# mid-request, and reloading the signed-in user afterwards would cost queries.
db = SQLAlchemy(model_class=Base, session_options={"class_": Session, "expire_on_commit": False})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
# Settings (storage, on/off, the limits themselves) come from RATELIMIT_* config.
limiter = Limiter(key_func=_client_key)
mail = Mail()
