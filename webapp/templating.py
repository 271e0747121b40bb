"""Template filters and globals shared by every page."""

from __future__ import annotations

import weakref
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cache
from urllib.parse import quote

from babel import Locale
from babel.dates import format_timedelta
from babel.support import NullTranslations, Translations
from flask import Flask, has_app_context, request, url_for
from flask.templating import Environment as FlaskEnvironment
from jinja2 import nodes
from jinja2.visitor import NodeTransformer
from markupsafe import Markup, escape

from webapp.i18n import (
    LANGUAGE_NAMES,
    language,
    languages,
    reader_zone,
    translations,
    zone_label,
)
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


# The catalog a template is being compiled with (contextvar: threads compile too).
_COMPILING: ContextVar[Translations | NullTranslations | None] = ContextVar(
    "compiling", default=None
)
TEXT_FORMATTER = "_i18n_format"


class TranslatingEnvironment(FlatGlobalsEnvironment):
    """Templates compiled once per language, with their texts translated in.

    `{{ _('Log in') }}` becomes the constant "Anmelden" in the German
    compilation of the template; `_('Hello %(name)s', name=user)` becomes a
    call that only fills in the name. So a page costs the same in every
    language, and no lookup runs while it renders. `ngettext` stays a call:
    its form depends on the number.
    """

    def _load_template(self, name, globals):
        if self.loader is None:
            raise TypeError("no loader for this environment specified")
        code = language()
        cache_key = (weakref.ref(self.loader), name, code)
        if self.cache is not None:
            template = self.cache.get(cache_key)
            if template is not None and (not self.auto_reload or template.is_up_to_date):
                if globals:
                    template.globals.update(globals)
                return template
        token = _COMPILING.set(translations() if has_app_context() else None)
        try:
            template = self.loader.load(self, name, self.make_globals(globals))
        finally:
            _COMPILING.reset(token)
        if self.cache is not None:
            self.cache[cache_key] = template
        return template

    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        catalog = _COMPILING.get()
        if catalog is None:
            return tree
        return _TranslateConstants(catalog).visit(tree)


class _TranslateConstants(NodeTransformer):
    """Replace `_('literal', **values)` calls by their translation for one catalog."""

    def __init__(self, catalog: Translations | NullTranslations) -> None:
        self.catalog = catalog

    def visit_Call(self, node: nodes.Call) -> nodes.Node:
        node = self.generic_visit(node)
        if not (
            isinstance(node.node, nodes.Name)
            and node.node.name in ("_", "gettext")
            and len(node.args) == 1
            and isinstance(node.args[0], nodes.Const)
            and isinstance(node.args[0].value, str)
            and node.dyn_args is None
            and node.dyn_kwargs is None
        ):
            return node
        text = nodes.MarkSafeIfAutoescape(
            nodes.Const(self.catalog.ugettext(node.args[0].value)), lineno=node.lineno
        )
        if not node.kwargs:
            return text
        formatter = nodes.Name(TEXT_FORMATTER, "load", lineno=node.lineno)
        return nodes.Call(formatter, [text], node.kwargs, None, None, lineno=node.lineno)


# Dates are spelled out from Babel's month names for the reader's language
# rather than formatted by Babel pattern by pattern: a tenth of the cost, and
# a page of 100 devices prints 300. Each language's layout is its medium date.
DATE_LAYOUTS = {"en": "{day} {month} {year}", "de": "{day}. {month} {year}"}


@cache
def _months(language: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the abbreviated and the full month names of `language`, January first."""
    months = Locale.parse(language).months["format"]
    return (
        tuple(months["abbreviated"][number] for number in range(1, 13)),
        tuple(months["wide"][number] for number in range(1, 13)),
    )


def format_datetime(value: datetime | None) -> str:
    """Render a timestamp in the reader's zone and language: "27 Nov 2026, 23:05 JST"."""
    if value is None:
        return "—"
    local = value.astimezone(reader_zone())
    code = language()
    day = DATE_LAYOUTS.get(code, DATE_LAYOUTS["en"]).format(
        day=local.day, month=_months(code)[0][local.month - 1], year=local.year
    )
    return f"{day}, {local.hour:02d}:{local.minute:02d} {zone_label(local)}"


def format_date(value: datetime | None) -> str:
    """Render a date in the reader's zone and language: "27 November 2026"."""
    if value is None:
        return "—"
    local = value.astimezone(reader_zone())
    code = language()
    return DATE_LAYOUTS.get(code, DATE_LAYOUTS["en"]).format(
        day=local.day, month=_months(code)[1][local.month - 1], year=local.year
    )


def format_ago(value: datetime | None) -> str:
    """Render how long ago a timestamp was, in the reader's language: "5 minutes ago"."""
    if value is None:
        return "—"
    return format_timedelta(
        value - datetime.now(UTC), add_direction=True, threshold=1, locale=language()
    )


def language_menu() -> Markup:
    """Return the footer's language links: each language in its own name, back to this page.

    Written here, not in base.html: one string for what would be a dozen
    template outputs on every anonymous page.
    """
    current = language()
    back = escape("?next=" + quote(request.full_path if request.query_string else request.path))
    items = []
    for code in languages():
        name = LANGUAGE_NAMES.get(code)
        if name is None:
            continue
        if code == current:
            items.append(f'<li><span aria-current="true" lang="{code}">{name}</span></li>')
        else:
            href = link("auth.choose_language", code=code) + back
            items.append(f'<li><a href="{href}" lang="{code}" hreflang="{code}">{name}</a></li>')
    return Markup("<ul>" + "".join(items) + "</ul>")  # nosec B704 - our codes and names, link escaped


@cache
def _language_options(chosen: str, offered: tuple[str, ...]) -> Markup:
    options = (
        f'<option value="{code}" lang="{code}"{" selected" if code == chosen else ""}>'
        f"{LANGUAGE_NAMES[code]}</option>"
        for code in offered
        if code in LANGUAGE_NAMES
    )
    return Markup("".join(options))  # nosec B704 - our codes and names only


def language_options(chosen: str) -> Markup:
    """Return the `<option>`s of the "Language" select, `chosen` selected."""
    return _language_options(chosen, tuple(languages()))


def iso_datetime(value: datetime | None) -> str:
    """Return the timestamp for a `<time datetime>` attribute (UTC, ISO 8601)."""
    return "" if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def format_text(text: str, **variables: object) -> str:
    """Fill in a template text translated when the template was compiled.

    Under autoescaping `text` is Markup, so the values are escaped.
    """
    return text % variables


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
        "preferences": ("account.preferences", {}),
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
    app.add_template_filter(format_ago, "ago")
    app.add_template_filter(iso_datetime, "iso")
    app.add_template_global(format_text, TEXT_FORMATTER)
    app.add_template_global(language, "page_language")
    app.add_template_global(language_menu, "language_menu")
    app.add_template_global(language_options, "language_options")
    app.add_template_global(link, "link")
    app.add_template_global(fixed_links, "fixed_links")
    # Replaces Flask-WTF's of the same name: CSRFProtect sets it as a global
    # and in a context processor, which would win over a global; this one
    # is registered after it, so it wins.
    app.add_template_global(generate_csrf, "csrf_token")
    app.context_processor(lambda: {"csrf_token": generate_csrf})
