"""The web app: `create_app` builds it from configuration."""

from __future__ import annotations

from collections.abc import Callable
from inspect import CO_COROUTINE
from types import FunctionType, MethodType
from typing import Any

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp.config import load_config
from webapp.extensions import csrf, db, limiter, login_manager, migrate
from webapp.templating import TranslatingEnvironment


class WebApp(Flask):
    """Flask, with two costs of every request made smaller.

    Templates' globals are one flat dict (see FlatGlobalsEnvironment), and
    `ensure_sync` answers for a plain function from its code flags.
    """

    jinja_environment = TranslatingEnvironment

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Return `func` itself when it is a plain (not `async def`) function or method.

        Flask asks this of every hook and view of every request, seventeen
        times for a signed-in page, and `inspect.iscoroutinefunction` walks
        wrappers and partials to answer; the code flags answer it at once.
        Anything else (an `async def`, a partial, a marked function) goes to Flask.
        """
        plain = func.__func__ if type(func) is MethodType else func
        if (
            type(plain) is FunctionType
            and not plain.__code__.co_flags & CO_COROUTINE
            and not hasattr(plain, "_is_coroutine_marker")
        ):
            return func
        return super().ensure_sync(func)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Create the app; `config` overrides settings read from the environment."""
    app = WebApp(
        __name__,
        instance_relative_config=True,
        template_folder="../templates",
        static_folder="../static",
    )
    # "/account/devices/1//revoke" is a 404, not a redirect to a URL nobody asked for.
    app.url_map.merge_slashes = False
    app.config.update(load_config(app.instance_path))
    if config:
        app.config.update(config)

    register_proxy_fix(app)
    register_extensions(app)
    register_security(app)
    register_blueprints(app)
    register_templates(app)
    register_errors(app)
    register_cli(app)
    return app


def warm_up(app: Flask) -> None:
    """Load now what a new process would otherwise load during its first requests.

    For the server entry point (wsgi.py), before its `gc.freeze()`. Every
    template is compiled in every language (0.16 s each) and the user-agent
    parser reads its rules (0.1 s, at the first sign-in, when a new-browser
    alert describes the browser), so no visitor waits for them, and what
    they build is frozen with the rest of start-up.
    """
    from webapp.domain.device_list import describe_user_agent
    from webapp.i18n import for_reader

    environment = app.jinja_env
    names = environment.list_templates(filter_func=lambda name: not name.startswith("."))
    with app.app_context():
        for code in app.config["LANGUAGES"]:
            with for_reader(code, None):
                for name in names:
                    environment.get_template(name)
    describe_user_agent("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0")


def register_proxy_fix(app: Flask) -> None:
    hops = app.config["TRUSTED_PROXIES"]
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)


def register_extensions(app: Flask) -> None:
    from webapp.logs import configure_logging

    configure_logging(app)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)

    from webapp import i18n, mail
    from webapp.security import throttle

    i18n.init_app(app)
    mail.init_app(app)
    throttle.init_app(app)


def register_security(app: Flask) -> None:
    from webapp import domain
    from webapp.security import access_tokens, headers, known_browsers, login
    from webapp.security.speedups import sessions

    access_tokens.init_app(app)
    sessions.init_app(app)
    headers.init_app(app)
    login.init_app(app)
    known_browsers.init_app(app)
    domain.init_app(app)


def register_blueprints(app: Flask) -> None:
    from webapp import account, admin, api, auth, health

    app.register_blueprint(auth.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(health.bp)
    api.init_app(app)


def register_templates(app: Flask) -> None:
    from webapp.templating import init_app

    init_app(app)


def register_errors(app: Flask) -> None:
    from webapp.errors import register_error_handlers

    register_error_handlers(app)


def register_cli(app: Flask) -> None:
    from webapp.cli import register_commands

    register_commands(app)


@event.listens_for(Engine, "connect")
def _sqlite_foreign_keys(dbapi_connection, connection_record) -> None:
    """SQLite enforces foreign keys (cascade, restrict) only when asked.

    Write-ahead logging lets readers go on while one request writes, and
    with synchronous=NORMAL a commit appends to the log without waiting for
    the disk: the database never corrupts, and only a power cut (not a
    crash of the app) can lose the last commits. That suits the embedded
    default; production runs on PostgreSQL.
    """
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
