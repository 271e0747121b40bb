"""Translations: the one place pages, forms, mail and the API take their texts from.

`_` translates now (in a request, or with `force_locale` for mail), `_l`
translates when the text is shown (form labels and messages defined at import),
`ngettext` chooses the plural. Templates have `_`, `gettext` and `ngettext`
from Flask-Babel's Jinja extension. Choosing the language and the time zone
is issue 28's work; until then every reader gets English and UTC.
"""

from __future__ import annotations

from flask import Flask
from flask_babel import Babel, force_locale, lazy_gettext, ngettext
from flask_babel import gettext as _

babel = Babel()
_l = lazy_gettext

LANGUAGES = ("en",)

__all__ = ["LANGUAGES", "_", "_l", "babel", "force_locale", "init_app", "ngettext"]


def select_locale() -> str:
    return "en"


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", "UTC")
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(app.root_path + "/translations"))
    babel.init_app(app, locale_selector=select_locale)
