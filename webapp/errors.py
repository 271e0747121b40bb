"""Error pages: every failure answers with a page, never a traceback."""

from __future__ import annotations

import logging
import secrets

from flask import Flask, g, render_template, request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from webapp.extensions import db, login_manager
from webapp.security.login import fail_closed

logger = logging.getLogger("webapp.errors")

MESSAGES = {
    400: (
        "Bad request",
        "The request could not be understood. Please reload the page and try again.",
    ),
    403: ("Forbidden", "You do not have permission to see this page."),
    404: ("Page not found", "There is nothing at this address."),
    405: ("Method not allowed", "This address does not accept that kind of request."),
    413: ("Request too large", "What you sent is too large."),
    429: ("Too many requests", "Too many attempts. Please wait a little and try again."),
    500: ("Something went wrong", "An unexpected error happened on our side."),
    503: (
        "Temporarily unavailable",
        "The service is briefly unavailable. Please try again in a moment.",
    ),
}


def request_id() -> str:
    """Return this request's id, shown on error pages and written in the log."""
    if "request_id" not in g:
        g.request_id = secrets.token_hex(6)
    return g.request_id


def render_error(code: int, headers: dict[str, str] | None = None, *, anonymous: bool = False):
    """Render the error page; `anonymous` shows it as to nobody signed in."""
    title, message = MESSAGES.get(code, MESSAGES[500])
    context = {"current_user": login_manager.anonymous_user()} if anonymous else {}
    body = render_template(
        "errors/error.html",
        code=code,
        title=title,
        message=message,
        request_id=request_id(),
        **context,
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
        fail_closed()
        try:
            db.session.rollback()
        except Exception:  # the connection is gone; the pool replaces it later
            logger.debug("rollback failed on a lost connection")
        logger.warning("database unavailable (request %s): %s", request_id(), type(exc).__name__)
        return render_error(503, {"Retry-After": "30"}, anonymous=True)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, InternalServerError | ServiceUnavailable):
            return http_error(exc)
        db.session.rollback()
        logger.exception(
            "unhandled error (request %s) %s %s", request_id(), request.method, request.path
        )
        return render_error(500)
