"""Template filters and globals shared by every page."""

from __future__ import annotations

from datetime import datetime

from flask import Flask, request, url_for
from flask.templating import Environment as FlaskEnvironment

from webapp.security.speedups.csrf import generate_csrf


class FlatGlobalsEnvironment(FlaskEnvironment):
    """Flask's Jinja environment, with each template's globals in one flat dict.

    Jinja chains a template's globals onto the environment's (a ChainMap),
    so that globals added after the template loaded would still show; each
    render then copies that chain key by key in Python, once for its
    context and once for every `{% from %}` import. Every global here is
    registered while the app is built, before any template loads (as
    Jinja's documentation asks), so a flat copy is the same and copies in C.
    """

    def make_globals(self, d):
        return {**self.globals, **(d or {})}


# Dates are spelled out rather than with strftime: no locale can change the
# month names, and it costs a tenth (a page of 100 devices prints 300).
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
MONTHS_SHORT = tuple(month[:3] for month in MONTHS)


def format_datetime(value: datetime | None) -> str:
    """Render a timestamp readably, in UTC: "27 Nov 2026, 14:05 UTC"."""
    if value is None:
        return "—"
    return (
        f"{value.day} {MONTHS_SHORT[value.month - 1]} {value.year}, "
        f"{value.hour:02d}:{value.minute:02d} UTC"
    )


def format_date(value: datetime | None) -> str:
    """Render a date readably: "27 November 2026"."""
    if value is None:
        return "—"
    return f"{value.day} {MONTHS[value.month - 1]} {value.year}"


_URLS: dict[tuple, str] = {}


def link(endpoint: str, **values: str) -> str:
    """`url_for` for links that are the same on every page: built once per process.

    Only for endpoints whose URL depends on nothing but `values` (static
    files, pages without arguments); keyed by the script root, so an app
    mounted under a prefix still gets its own.
    """
    key = (request.script_root, endpoint, *sorted(values.items()))
    url = _URLS.get(key)
    if url is None:
        url = _URLS[key] = url_for(endpoint, **values)
    return url


class FixedLinks:
    """The links of every page's head and header, and of the account and login pages.

    Built once per process (per script root): `links.css` in a template is
    an attribute read, where each `link(...)` is a call through Jinja. Only
    for the pages loaded most (every signed-in page, the login page); other
    pages use `link`.
    """

    TARGETS = {
        "css": ("static", {"filename": "css/app.css"}),
        "favicon": ("static", {"filename": "img/favicon.svg"}),
        "script": ("static", {"filename": "js/app.js"}),
        "home": ("auth.index", {}),
        "account": ("account.overview", {}),
        "devices": ("account.device_list", {}),
        "admin": ("admin.index", {}),
        "logout": ("auth.logout", {}),
        "login": ("auth.login", {}),
        "signup": ("auth.signup", {}),
        # The account page's.
        "send_confirmation": ("auth.send_confirmation", {}),
        "change_email": ("account.change_email", {}),
        "security": ("account.security", {}),
        "activity": ("account.activity", {}),
        "change_password": ("account.change_password", {}),
        "delete": ("account.delete", {}),
        # The login page's.
        "passkey_login": ("auth.passkey_login", {}),
        "passkey_login_options": ("auth.passkey_login_options", {}),
        "passkeys_script": ("static", {"filename": "js/passkeys.js"}),
        "request_reset": ("auth.request_reset", {}),
    }

    def __init__(self) -> None:
        for name, (endpoint, values) in self.TARGETS.items():
            setattr(self, name, url_for(endpoint, **values))


_FIXED_LINKS: dict[str, FixedLinks] = {}


def fixed_links() -> FixedLinks:
    """Return the fixed links for this request's script root."""
    root = request.script_root
    links = _FIXED_LINKS.get(root)
    if links is None:
        links = _FIXED_LINKS[root] = FixedLinks()
    return links


def init_app(app: Flask) -> None:
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(format_date, "date")
    app.add_template_global(link, "link")
    app.add_template_global(fixed_links, "fixed_links")
    # Replaces Flask-WTF's of the same name: CSRFProtect sets it as a global
    # and in a context processor, which would win over a global; this one
    # is registered after it, so it wins.
    app.add_template_global(generate_csrf, "csrf_token")
    app.context_processor(lambda: {"csrf_token": generate_csrf})
