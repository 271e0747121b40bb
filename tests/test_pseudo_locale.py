"""The pseudo-locale test: every visible text of every page went through the catalog.

A test-only language ("eo", Esperanto's code, which Keystone does not
speak) gets a catalog built from messages.pot in which every text reads
"⟦Ŀöğ îñ⟧": accented, between markers. Each page is then rendered in it,
signed out, signed in and as an admin, including the error pages, and
every visible text node (and every attribute a person reads: labels,
placeholders, confirmations) must be marked. What may stay unmarked is
what nobody translates: dates and numbers, the user's own data, the brand,
each language's own name and the IANA zone names.

A text somebody forgot to wrap shows up as an unmarked English word here.
"""

from __future__ import annotations

import importlib.util
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import abort

from tests.conftest import TEST_PASSWORD, login, post_form
from webapp.extensions import db
from webapp.i18n import zone_names
from webapp.models import AuditEvent, RefreshToken, Role, User, WebAuthnCredential
from webapp.security.throttle import Throttled

PSEUDO = "eo"
OPEN, CLOSE = "⟦", "⟧"
ACCENTS = str.maketrans("aeiouAEIOUcnsyl", "åéîöûÅÉÎÖÛçñšýŀ")
# What pseudo-translation leaves alone: placeholders, tags, entities.
KEEP = re.compile(r"(%\(\w+\)[sd]|<[^>]+>|&\w+;)")
# The innermost marked text: a translation may hold another one (an event's name).
MARKED = re.compile(f"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}")
CHECKER = Path(__file__).resolve().parent.parent / "scripts" / "check_catalogs.py"
# Attributes a person reads or hears.
READ_ATTRIBUTES = {"aria-label", "placeholder", "title", "alt", "data-confirm"}
SKIPPED_TAGS = {"script", "style", "code", "svg"}
ALWAYS_ALLOWED = {"Keystone", "English", "Deutsch", "UTC", "admin", "user"}


def pseudo(text: str) -> str:
    """Mark and accent `text`, keeping what the code fills in or the browser parses."""
    parts = KEEP.split(text)
    return OPEN + "".join(p if KEEP.fullmatch(p) else p.translate(ACCENTS) for p in parts) + CLOSE


def extract_fresh(target: Path) -> None:
    """Extract every marked text of the code as it is now, as `make translations` would."""
    spec = importlib.util.spec_from_file_location("check_catalogs", CHECKER)
    checker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(checker)
    checker.extract(target)


@pytest.fixture(scope="session")
def fresh_template(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("pot") / "messages.pot"
    extract_fresh(target)
    return target


def build_pseudo_catalog(template_path: Path, directory: Path) -> None:
    """Write directory/eo/LC_MESSAGES/messages.mo with every text of the template marked."""
    template = polib.pofile(str(template_path))
    catalog = polib.POFile()
    catalog.metadata = {
        "Content-Type": "text/plain; charset=utf-8",
        "Plural-Forms": "nplurals=2; plural=(n != 1);",
    }
    for entry in template:
        if entry.msgid_plural:
            forms = {0: pseudo(entry.msgid), 1: pseudo(entry.msgid_plural)}
            catalog.append(
                polib.POEntry(
                    msgid=entry.msgid, msgid_plural=entry.msgid_plural, msgstr_plural=forms
                )
            )
        else:
            catalog.append(polib.POEntry(msgid=entry.msgid, msgstr=pseudo(entry.msgid)))
    target = directory / PSEUDO / "LC_MESSAGES"
    target.mkdir(parents=True)
    source = target / "messages.po"
    catalog.save(str(source))
    with source.open("rb") as po, (target / "messages.mo").open("wb") as mo:
        write_mo(mo, read_po(po))


@pytest.fixture
def app_config(app_config, tmp_path, fresh_template):
    build_pseudo_catalog(fresh_template, tmp_path)
    real = Path(__file__).resolve().parent.parent / "webapp" / "translations"
    return {
        **app_config,
        "LANGUAGES": ("en", "de", PSEUDO),
        "BABEL_TRANSLATION_DIRECTORIES": f"{real};{tmp_path}",
    }


@pytest.fixture
def app(app):
    """The app with a few routes that fail on purpose, for the error pages."""

    def fail(code: int):
        if code == 1:
            raise RuntimeError("an unexpected failure")
        if code == 2:
            raise Throttled(time.time() + 120)
        abort(code)

    app.add_url_rule("/test-failure/<int:code>", "test_failure", fail, methods=["GET"])
    return app


class VisibleText(HTMLParser):
    """Collect the text a person sees or hears on a page: text nodes and read attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skipping = 0
        self.in_zone_select = False
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag in SKIPPED_TAGS:
            self.skipping += 1
        if tag == "select" and attributes.get("name") == "time_zone":
            self.in_zone_select = True
        for name, value in attributes.items():
            if name in READ_ATTRIBUTES and value:
                self.found.append(value)
        if tag == "input" and attributes.get("type") in ("submit", "button"):
            self.found.append(attributes.get("value") or "")
        if tag == "optgroup":
            self.found.append(attributes.get("label") or "")

    def handle_endtag(self, tag):
        if tag in SKIPPED_TAGS:
            self.skipping -= 1
        if tag == "select":
            self.in_zone_select = False

    def handle_data(self, data):
        if not self.skipping and not self.in_zone_select and data.strip():
            self.found.append(data)


WORD = re.compile(r"[^\W\d_][\w.@+'-]*")


def words_of(text: str) -> set[str]:
    return {word.strip(".'-") for word in WORD.findall(text)}


def allowed_words() -> set[str]:
    """Words that may stay unmarked: user data, role data, dates, names never translated."""
    words = set(ALWAYS_ALLOWED)
    for user in db.session.scalars(db.select(User)):
        words |= words_of(f"{user.username} {user.email}")
    for passkey in db.session.scalars(db.select(WebAuthnCredential)):
        words |= words_of(passkey.name)
    for device_name in db.session.scalars(db.select(RefreshToken.name)):
        words |= words_of(device_name or "")
    for role in db.session.scalars(db.select(Role)):
        words |= words_of(f"{role.name} {role.description or ''}")
    for event in db.session.scalars(db.select(AuditEvent)):
        for key, value in (event.details or {}).items():
            words |= words_of(f"{key} {value}")
        words |= words_of(f"{event.action} {event.user_agent or ''}")
    months = Locale.parse(PSEUDO).months["format"]
    words |= set(months["abbreviated"].values()) | set(months["wide"].values())
    return words


def unmarked(page: str, allowed: set[str]) -> list[str]:
    """Return the visible texts of `page` with a word that is neither marked nor allowed.

    Marked texts are cut out of the whole page first, innermost first: one
    may span tags (a sentence with a link in it) or hold another.
    """
    while True:
        stripped = MARKED.sub(" ", page)
        if stripped == page:
            break
        page = stripped
    parser = VisibleText()
    parser.feed(page)
    bad = []
    for text in parser.found:
        if words_of(text) - allowed:
            bad.append(text.strip())
    return bad


def assert_all_marked(client, url: str, *, method: str = "GET", status=None, **data) -> None:
    if method == "POST":
        answer = post_form(client, url, data, page=data.pop("page", None))
    else:
        answer = client.get(url)
    if status is not None:
        assert answer.status_code == status, url
    assert answer.headers.get("Content-Type", "").startswith("text/html"), url
    page = answer.get_data(as_text=True)
    assert f'<html lang="{PSEUDO}">' in page, url
    found = unmarked(page, allowed_words())
    assert not found, f"{url}: texts not from the catalog: {found}"


@pytest.fixture
def pseudo_client(client):
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = PSEUDO
    return client


SIGNED_OUT_PAGES = [
    ("/", 200),
    ("/signup", 200),
    ("/login", 200),
    ("/reset-password", 200),
    ("/reset-password/not-a-token", None),
    ("/verify-email/not-a-token", None),
    ("/account/email/cancel/not-a-token", None),
    ("/not-me/not-a-token", None),
    ("/no-such-page", 404),
    ("/api/docs", 200),
    ("/logout", 405),
    *((f"/test-failure/{code}", code) for code in (400, 403, 413, 429, 503)),
    ("/test-failure/1", 500),
    ("/test-failure/2", 429),
]


@pytest.mark.parametrize(("url", "status"), SIGNED_OUT_PAGES)
def test_signed_out_pages_are_all_translated(pseudo_client, url, status):
    assert_all_marked(pseudo_client, url, status=status)


def test_forms_with_errors_are_all_translated(pseudo_client, user):
    assert_all_marked(pseudo_client, "/login", method="POST", identifier="", password="")
    assert_all_marked(pseudo_client, "/login", method="POST", identifier="alice", password="wrong")
    assert_all_marked(
        pseudo_client,
        "/signup",
        method="POST",
        username="a",
        email="not-an-address",
        password="alice",
        confirm_password="other",
    )
    assert_all_marked(pseudo_client, "/reset-password", method="POST", email="alice@example.com")


def test_signed_in_pages_are_all_translated(pseudo_client, user, new_client):
    user.language = PSEUDO
    db.session.commit()
    login(new_client())  # a second device, so the list shows another's actions
    # An app, so the device list shows its badge.
    signed_in = new_client().post(
        "/api/v1/auth/token",
        json={"username": "alice", "password": TEST_PASSWORD, "device_name": "Desk app"},
    )
    assert signed_in.status_code == 200
    login(pseudo_client)
    # A passkey (added after signing in: it would be asked for at the login).
    db.session.add(
        WebAuthnCredential(
            user_id=user.id,
            credential_id=b"pseudo-key",
            public_key=b"not-used",
            sign_count=0,
            name="Desk key",
        )
    )
    db.session.commit()
    for url in (
        "/account",
        "/account/devices",
        "/account/password",
        "/account/email",
        "/account/delete",
        "/account/activity",
        "/account/security",
        "/account/security/totp",
        "/admin/",  # 403 for a user
    ):
        assert_all_marked(pseudo_client, url)
    # A flash message, and a form sent back with its errors.
    assert_all_marked(
        pseudo_client,
        "/account/preferences",
        method="POST",
        language=PSEUDO,
        time_zone="Mars/Base",
        page="/account",
        status=400,
    )
    post_form(
        pseudo_client,
        "/account/preferences",
        {"language": PSEUDO, "time_zone": "UTC"},
        page="/account",
    )
    assert_all_marked(pseudo_client, "/account")


def test_admin_pages_are_all_translated(pseudo_client, admin, user):
    admin.language = PSEUDO
    db.session.commit()
    login(pseudo_client, "root-admin")
    role = db.session.scalars(db.select(Role).where(Role.name == "user")).one()
    for url in (
        "/admin/",
        "/admin/users",
        f"/admin/users/{user.id}",
        f"/admin/users/{admin.id}",
        "/admin/roles",
        f"/admin/roles/{role.id}",
        "/admin/audit",
        "/admin/mail",
        "/admin/users?q=nobody-matches",
        "/admin/audit?user=nobody",
    ):
        assert_all_marked(pseudo_client, url)


def test_the_check_catches_an_unwrapped_text(pseudo_client):
    """The test itself: a page with a text nobody wrapped fails it."""
    page = '<html lang="eo"><body><p>⟦Ŀöğ îñ⟧</p><p>Forgotten text</p></body></html>'
    assert unmarked(page, set(ALWAYS_ALLOWED)) == ["Forgotten text"]
    assert unmarked('<button aria-label="Revoke x">⟦X⟧</button>', set()) == ["Revoke x"]
    assert not unmarked('<p>⟦Séé <a href="/x">thîš</a> ⟦Ñöv⟧⟧</p>', set())
    assert not unmarked("<p>27 ⟦Ñöv⟧ 2026, 14:05 UTC</p>", {"UTC"})


def test_every_zone_offered_is_a_zone_name(pseudo_client):
    """The only unmarked options are IANA names: what the list check above skips."""
    assert all(re.fullmatch(r"[A-Za-z0-9_+/-]+", name) for name in zone_names())
