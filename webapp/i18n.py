"""Languages and time zones: the one place pages, forms, mail and the API take them from.

`_` translates now (in a request, or inside `for_reader` for mail), `_l`
translates when the text is shown (form labels and messages defined at
import), `ngettext` chooses the plural. Templates call `_` and `ngettext`
too; a `_('literal')` in a template is translated once, when the template
is compiled for a language (see `TranslatingEnvironment` in templating.py),
so a page pays nothing per text.

The reader's language: a signed-in user's own choice, else the "language"
cookie the footer's links set, else the best match of `Accept-Language`,
else English. Their time zone: a signed-in user's, else UTC.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from functools import cache, lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from babel import Locale
from babel.support import NullTranslations, Translations
from flask import Flask, current_app, g, has_request_context, request
from flask_babel import Babel, force_locale, get_locale, refresh
from flask_babel.speaklater import LazyString
from flask_login import current_user
from werkzeug.datastructures import LanguageAccept
from werkzeug.http import parse_accept_header

babel = Babel()

# Each language's own name, the same in every language (a reader who cannot
# read the page must still find theirs).
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch"}
LANGUAGES = tuple(LANGUAGE_NAMES)
DEFAULT_LANGUAGE = "en"
LANGUAGE_COOKIE_DAYS = 400  # the cookie is LANGUAGE_COOKIE_NAME (config)
DEFAULT_ZONE = "UTC"
UTC_ZONE = ZoneInfo("UTC")

__all__ = [
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "N_",
    "_",
    "_l",
    "babel",
    "for_reader",
    "force_locale",
    "init_app",
    "ngettext",
]

_NULL = NullTranslations()


def languages() -> tuple[str, ...]:
    """Return the languages this app serves (tests add a pseudo-locale)."""
    return current_app.config["LANGUAGES"]


def select_locale() -> Locale:
    """Choose the language of this request: the user's, the cookie's, the browser's, English."""
    if not has_request_context():
        return locale_of(DEFAULT_LANGUAGE)
    offered = languages()
    user = current_user._get_current_object()
    if user.is_authenticated and user.language in offered:
        return locale_of(user.language)
    chosen = request.cookies.get(current_app.config["LANGUAGE_COOKIE_NAME"])
    if chosen in offered:
        return locale_of(chosen)
    header = request.headers.get("Accept-Language", "")
    return locale_of(_best_match(header[:500], tuple(offered)) if header else DEFAULT_LANGUAGE)


@cache
def locale_of(code: str) -> Locale:
    """Return Babel's Locale for a language code, parsed once (Flask-Babel takes it as is)."""
    return Locale.parse(code)


@lru_cache(maxsize=256)
def _best_match(header: str, offered: tuple[str, ...]) -> str:
    """Return the best of `offered` for an Accept-Language header (each parsed once)."""
    return parse_accept_header(header, LanguageAccept).best_match(offered, default=DEFAULT_LANGUAGE)


def language() -> str:
    """Return the language of the page or mail being made, as its code ("de")."""
    try:
        locale = get_locale()  # chosen once per request, then kept by Flask-Babel
    except RuntimeError:  # outside any app context: nothing chose a language
        return DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE if locale is None else locale.language


def translations() -> Translations | NullTranslations:
    """Return the catalog of the current language, loaded once per process and app."""
    code = language()
    if code == DEFAULT_LANGUAGE:
        return _NULL
    catalogs = current_app.extensions["webapp.catalogs"]
    catalog = catalogs.get(code)
    if catalog is None:
        catalog = catalogs[code] = _load_catalog(code)
    return catalog


def _load_catalog(code: str) -> Translations | NullTranslations:
    merged = Translations()
    for directory in current_app.extensions["babel"].translation_directories:
        found = Translations.load(directory, [code])
        if isinstance(found, Translations):
            merged.merge(found)
            merged.plural = found.plural
    return merged


def gettext(message: str, **variables: object) -> str:
    """Translate `message` into the current language and fill in its `%(name)s` places."""
    text = translations().ugettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, **variables: object) -> str:
    """Translate and choose the plural for `num`, available as `%(num)d`."""
    variables.setdefault("num", num)
    return translations().ungettext(singular, plural, num) % variables


def lazy_gettext(message: str, **variables: object) -> LazyString:
    """Return `message`, to be translated each time it is shown."""
    return LazyString(gettext, message, **variables)


def N_(message: str) -> str:
    """Mark `message` for the catalog only: it is translated where it is shown."""
    return message


_ = gettext
_l = lazy_gettext


# --- time zones ---------------------------------------------------------------

# The regions of the IANA names offered on /account, in the order shown.
ZONE_REGIONS = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)


@cache
def zone_names() -> frozenset[str]:
    """Return every zone a reader may choose: the IANA regions' names, and UTC."""
    regional = {name for name in available_timezones() if name.split("/", 1)[0] in ZONE_REGIONS}
    return frozenset(regional | {DEFAULT_ZONE})


def valid_zone(name: object) -> str | None:
    """Return `name` if it is a zone a reader may choose, else None."""
    return name if isinstance(name, str) and name in zone_names() else None


@cache
def zone(name: str) -> ZoneInfo:
    """Return the ZoneInfo for a stored zone name; UTC for a name tzdata no longer knows."""
    try:
        return ZoneInfo(name) if valid_zone(name) else UTC_ZONE
    except ZoneInfoNotFoundError:
        return UTC_ZONE


def zone_label(local: datetime) -> str:
    """Return the zone's abbreviation ("JST", "CET", "UTC"), or its offset ("+04:00")."""
    name = local.tzname() or "UTC"
    if name[0] in "+-":
        offset = local.strftime("%z")
        return f"{offset[:3]}:{offset[3:]}"
    return name


def reader_zone() -> ZoneInfo:
    """Return the time zone times are shown in: the signed-in user's, else UTC."""
    chosen = g.get("_reader_zone")
    if chosen is None:
        chosen = UTC_ZONE
        if has_request_context():
            user = current_user._get_current_object()
            if user.is_authenticated:
                chosen = zone(user.time_zone)
        g._reader_zone = chosen
    return chosen


def refresh_language() -> None:
    """Choose the language and zone again, after the user changed theirs (for the flash)."""
    refresh()
    g.pop("_reader_zone", None)


@contextlib.contextmanager
def for_reader(language_code: str | None, zone_name: str | None) -> Iterator[None]:
    """Write in a reader's language and time zone for a while (a mail, from any thread)."""
    code = language_code if language_code in languages() else DEFAULT_LANGUAGE
    previous = g.get("_reader_zone")
    g._reader_zone = zone(zone_name or DEFAULT_ZONE)
    try:
        with force_locale(code):
            yield
    finally:
        g._reader_zone = previous


def init_app(app: Flask) -> None:
    app.config.setdefault("LANGUAGES", LANGUAGES)
    app.config.setdefault("LANGUAGE_COOKIE_NAME", "language")
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LANGUAGE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", DEFAULT_ZONE)
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(app.root_path + "/translations"))
    app.extensions["webapp.catalogs"] = {}
    babel.init_app(app, locale_selector=select_locale)
    # Flask-Babel installs its own callables; ours share the catalog cache above.
    # They only look the text up: Jinja's "newstyle" wrappers fill in the values,
    # after marking the translation safe, so the values are escaped.
    app.jinja_env.install_gettext_callables(
        lambda message: translations().ugettext(message),
        lambda singular, plural, num: translations().ungettext(singular, plural, num),
        newstyle=True,
    )
