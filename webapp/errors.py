"""Error pages: every failure answers with a page, never a traceback.

Under /api/ the answer is RFC 9457 problem+json instead, for every error,
404, 405 and 500 included: an app never gets HTML.
"""

from __future__ import annotations

import logging
import secrets

from flask import Flask, Response, g, json, render_template, request
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException, InternalServerError, ServiceUnavailable

from webapp.extensions import db, login_manager
from webapp.i18n import _, _l
from webapp.security.login import fail_closed

logger = logging.getLogger("webapp.errors")

MESSAGES = {
    400: (
        _l("Bad request"),
        _l("The request could not be understood. Please reload the page and try again."),
    ),
    401: (_l("Unauthorized"), _l("Sign in first: send a valid access token.")),
    403: (_l("Forbidden"), _l("You do not have permission to see this page.")),
    404: (_l("Page not found"), _l("There is nothing at this address.")),
    405: (_l("Method not allowed"), _l("This address does not accept that kind of request.")),
    409: (_l("Conflict"), _l("That change conflicts with the current state.")),
    413: (_l("Request too large"), _l("What you sent is too large.")),
    415: (_l("Unsupported media type"), _l("Send JSON, with Content-Type: application/json.")),
    422: (_l("Unprocessable content"), _l("Some fields are missing or not valid.")),
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


API_PREFIX = "/api/"
PROBLEM_TYPE = "application/problem+json"
# A machine-readable `code` for each status an error handler answers.
PROBLEM_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def wants_problem() -> bool:
    """Return whether this request is the API's, answered with problem+json."""
    return request.path.startswith(API_PREFIX)


def problem(
    status: int,
    *,
    code: str | None = None,
    detail: str | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: object,
) -> Response:
    """Return an RFC 9457 problem+json response; `extra` adds members (`errors`, `mfa_token`)."""
    default_title, default_detail = MESSAGES.get(status, (None, None))
    body = {
        "type": "about:blank",
        "title": str(title or default_title or MESSAGES[500][0]),
        "status": status,
        "detail": str(detail or default_detail or MESSAGES[500][1]),
        "code": code or PROBLEM_CODES.get(status, "error"),
        **extra,
    }
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_TYPE)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _field_errors(exc: HTTPException) -> dict | None:
    """The field messages webargs attached to a 422, without its location level."""
    messages = (getattr(exc, "data", None) or {}).get("messages")
    if not isinstance(messages, dict):
        return None
    merged: dict = {}
    for location in messages.values():
        if isinstance(location, dict):
            merged.update(location)
    return merged


def http_error(exc: HTTPException):
    """Answer an HTTP error: a page, or problem+json under /api/."""
    if exc.code is None or exc.code < 400:
        return exc
    headers = {}
    if exc.code == 405 and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    if exc.code in (429, 503):
        headers["Retry-After"] = "60" if exc.code == 429 else "30"
    if wants_problem():
        if exc.code == 422:
            return problem(
                422,
                detail=str(MESSAGES[422][1]),
                headers=headers,
                errors=_field_errors(exc) or {},
            )
        return problem(exc.code, headers=headers)
    return render_error(exc.code, headers)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, http_error)

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
        if wants_problem():
            return problem(503, headers={"Retry-After": "30"})
        return render_error(503, {"Retry-After": "30"}, anonymous=True)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, InternalServerError | ServiceUnavailable):
            return http_error(exc)
        db.session.rollback()
        logger.exception(
            "unhandled error (request %s) %s %s", request_id(), request.method, request.path
        )
        if wants_problem():
            return problem(
                500,
                detail=_(
                    "An unexpected error happened on our side (request %(request_id)s).",
                    request_id=request_id(),
                ),
            )
        return render_error(500)
