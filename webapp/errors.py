"""Error pages: every failure answers with a page, never a traceback."""

from __future__ import annotations

import logging
import secrets

from flask import Flask, g, render_template, request
from flask_login import AnonymousUserMixin
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from webapp.extensions import db
from webapp.i18n import _l

logger = logging.getLogger("webapp.errors")

MESSAGES = {
    400: (
        _l("Bad request"),
        _l("The request could not be understood. Please reload the page and try again."),
    ),
    403: (_l("Forbidden"), _l("You do not have permission to see this page.")),
    404: (_l("Page not found"), _l("There is nothing at this address.")),
    405: (_l("Method not allowed"), _l("This address does not accept that kind of request.")),
    413: (_l("Request too large"), _l("What you sent is too large.")),
    429: (_l("Too many requests"), _l("Too many attempts. Please wait a little and try again.")),
    500: (_l("Something went wrong"), _l("An unexpected error happened on our side.")),
    503: (
        _l("Temporarily unavailable"),
        _l("The service is briefly unavailable. Please try again in a moment."),
    ),
}


def request_id() -> str:
    """Return this request's id, shown on error pages and written in the log."""
    if "request_id" not in g:
        g.request_id = secrets.token_hex(6)
    return g.request_id


def render_error(code: int, headers: dict[str, str] | None = None):
    title, message = MESSAGES.get(code, MESSAGES[500])
    body = render_template(
        "errors/error.html", code=code, title=title, message=message, request_id=request_id()
    )
    return body, code, headers or {}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code is None or exc.code < 400:
            return exc
        headers = {}
        if exc.code == 405 and exc.valid_methods:
            headers["Allow"] = ", ".join(exc.valid_methods)
        if exc.code in (429, 503):
            headers["Retry-After"] = "60" if exc.code == 429 else "30"
        return render_error(exc.code, headers)

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    @app.errorhandler(PoolTimeout)
    def database_unavailable(exc: Exception):
        # Fail closed: nobody is signed in on a page we cannot check.
        g._login_user = AnonymousUserMixin()
        try:
            db.session.rollback()
        except Exception:  # the connection is gone; the pool replaces it later
            logger.debug("rollback failed on a lost connection")
        logger.warning("database unavailable (request %s): %s", request_id(), type(exc).__name__)
        return render_error(503, {"Retry-After": "30"})

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, InternalServerError | ServiceUnavailable):
            return http_error(exc)
        db.session.rollback()
        logger.exception(
            "unhandled error (request %s) %s %s", request_id(), request.method, request.path
        )
        return render_error(500)
