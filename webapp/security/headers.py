"""Security headers on every response, in a few lines of our own.

Flask-Talisman would do the same but is not actively maintained; what we
need is a fixed set of headers, so the code is shorter than its config.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Flask

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


# Each is set unless the view set its own.
_DEFAULTS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
_HSTS = (("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),)
# Pages can show personal data or carry a CSRF token: never cached. Static
# files keep the caching headers Flask gives them.
_NO_STORE = ("Cache-Control", "no-store")


class SecurityHeaders:
    """WSGI middleware: the fixed security headers, added as each response starts.

    An `after_request` hook would hand them to Werkzeug, which checks every
    header it is given twice (when it is set, and when the headers are
    copied out for the server), on every response; these are constants.
    Error pages get them too: everything Flask answers passes through here.
    """

    def __init__(self, wsgi_app: Callable, *, hsts: bool, static_prefix: str) -> None:
        self.wsgi_app = wsgi_app
        self.defaults = _DEFAULTS + _HSTS if hsts else _DEFAULTS
        self.static_prefix = static_prefix

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        static = environ.get("PATH_INFO", "").startswith(self.static_prefix)
        defaults = self.defaults

        def start(status: str, headers: list[tuple[str, str]], exc_info=None):
            present = {name.lower() for name, _ in headers}
            if not static and "cache-control" in present:
                headers[:] = [item for item in headers if item[0].lower() != "cache-control"]
            headers.extend([item for item in defaults if item[0].lower() not in present])
            if not static:
                headers.append(_NO_STORE)
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def init_app(app: Flask) -> None:
    app.wsgi_app = SecurityHeaders(
        app.wsgi_app,
        hsts=app.config["COOKIE_SECURE"],
        static_prefix=f"{app.static_url_path}/",
    )
