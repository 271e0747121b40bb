"""Languages and time zones: who reads which language, every time in the reader's zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from tests.conftest import TEST_PASSWORD, login, post_form
from tests.smtp import html_of, text_of
from webapp.domain.credentials import send_reset_link
from webapp.extensions import db
from webapp.mail import wait_for_mail
from webapp.models import User

LANGUAGE_COOKIE = "language"  # LANGUAGE_COOKIE_NAME without COOKIE_SECURE
GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
ENGLISH = {"Accept-Language": "en-GB,en;q=0.9"}
SUBMIT_RE = re.compile(r'<input[^>]*id="submit"[^>]*value="([^"]*)"')


def html(response) -> str:
    return response.get_data(as_text=True)


def lang_of(response) -> str:
    return re.search(r'<html lang="([^"]+)">', html(response)).group(1)


def set_reader(user: User, language: str = "en", time_zone: str = "UTC") -> None:
    user.language, user.time_zone = language, time_zone
    db.session.commit()


# --- choosing the language ----------------------------------------------------------


def test_german_browser_gets_the_german_login_page(client):
    page = client.get("/login", headers=GERMAN)
    assert lang_of(page) == "de"
    assert SUBMIT_RE.search(html(page)).group(1) == "Anmelden"
    assert '<label for="password">Passwort</label>' in html(page)
    assert "Log in" not in html(page)


@pytest.mark.parametrize("header", ["fr-FR,fr;q=0.9", "", "*", "xx-invalid;q=abc"])
def test_a_language_we_do_not_speak_gets_english(client, header):
    page = client.get("/login", headers={"Accept-Language": header})
    assert page.status_code == 200
    assert lang_of(page) == "en"
    assert SUBMIT_RE.search(html(page)).group(1) == "Log in"


def test_the_best_match_wins_not_the_first_listed(client):
    page = client.get("/login", headers={"Accept-Language": "fr;q=1, de;q=0.8, en;q=0.5"})
    assert lang_of(page) == "de"


def test_a_page_compiled_in_german_does_not_leak_into_english(client, new_client):
    """Templates are compiled once per language: the German copy must not serve English readers."""
    assert "Anmelden" in html(client.get("/login", headers=GERMAN))
    english = new_client().get("/login", headers=ENGLISH)
    assert lang_of(english) == "en" and "Anmelden" not in html(english)


def test_footer_link_keeps_the_visitors_language_in_a_cookie(client):
    page = client.get("/login", headers=ENGLISH)
    assert 'href="/language/de?next=/login"' in html(page)
    answer = client.get("/language/de?next=/login", headers=ENGLISH)
    assert answer.status_code == 302 and answer.headers["Location"] == "/login"
    jar = client.get_cookie(LANGUAGE_COOKIE)
    assert jar.value == "de" and jar.http_only
    assert lang_of(client.get("/login", headers=ENGLISH)) == "de"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_footer_link_does_not_redirect_off_the_site(client, target):
    answer = client.get("/language/de", query_string={"next": target})
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/"


def test_footer_link_refuses_a_language_we_do_not_speak(client):
    assert client.get("/language/xx?next=/login").status_code == 404
    assert client.get_cookie(LANGUAGE_COOKIE) is None


def test_signed_in_users_choice_wins_over_browser_and_cookie(client, user):
    set_reader(user, "de")
    client.set_cookie(LANGUAGE_COOKIE, "en")
    login(client)
    page = client.get("/account", headers=ENGLISH)
    assert lang_of(page) == "de"
    assert "Ihr Konto" in html(page)
    # The footer's language links are for anonymous visitors only.
    assert "/language/" not in html(page)


# --- preferences on /account -----------------------------------------------------------


def test_account_offers_language_and_time_zone_grouped_by_region(client, user):
    login(client)
    page = html(client.get("/account"))
    assert '<label for="language">Language</label>' in page
    assert '<option value="de" lang="de">Deutsch</option>' in page
    assert '<label for="time_zone">Time zone</label>' in page
    assert '<optgroup label="Europe">' in page
    assert "<option>Europe/Berlin</option>" in page
    assert "<option selected>UTC</option>" in page
    assert ">Save preferences</button>" in page


def test_saving_preferences_switches_language_and_zone(client, user):
    login(client)
    answer = post_form(
        client,
        "/account/preferences",
        {"language": "de", "time_zone": "Asia/Tokyo"},
        page="/account",
    )
    assert answer.status_code == 302
    db.session.refresh(user)
    assert (user.language, user.time_zone) == ("de", "Asia/Tokyo")
    page = html(client.get("/account"))
    assert "Ihre Einstellungen wurden gespeichert." in page
    assert "<option selected>Asia/Tokyo</option>" in page
    assert '<optgroup label="Asien">' in page


@pytest.mark.parametrize(
    ("language", "zone", "error"),
    [
        ("de", "Mars/Olympus_Mons", "Choose a time zone from the list."),
        ("de", "", "Choose a time zone from the list."),
        ("de", "../../etc/passwd", "Choose a time zone from the list."),
        ("de", "US/Pacific", "Choose a time zone from the list."),  # an alias, not offered
        ("fr", "Europe/Paris", "Choose a language from the list."),
        ("<script>", "Europe/Paris", "Choose a language from the list."),
    ],
)
def test_bad_preferences_are_refused_and_nothing_is_saved(client, user, language, zone, error):
    login(client)
    answer = post_form(
        client, "/account/preferences", {"language": language, "time_zone": zone}, page="/account"
    )
    assert answer.status_code == 400
    assert error in html(answer)
    assert "<script>" not in html(answer)
    db.session.refresh(user)
    assert (user.language, user.time_zone) == ("en", "UTC")


def test_preferences_need_the_csrf_token(client, user, app):
    app.config["WTF_CSRF_ENABLED"] = True
    login(client)
    answer = client.post("/account/preferences", data={"language": "de", "time_zone": "UTC"})
    assert answer.status_code == 400
    db.session.refresh(user)
    assert user.language == "en"


def test_preferences_need_a_signed_in_user(client):
    answer = client.post("/account/preferences", data={"language": "de", "time_zone": "UTC"})
    assert answer.status_code in (302, 400)
    assert "/account/preferences" not in answer.headers.get("Location", "")


# --- signup records the browser's zone and the page's language ------------------------


def signup(client, headers: dict | None = None, **extra) -> None:
    data = {
        "username": "bob",
        "email": "bob@example.com",
        "password": TEST_PASSWORD,
        "confirm_password": TEST_PASSWORD,
        **extra,
    }
    answer = post_form(client, "/signup", data, headers=headers or {})
    assert answer.status_code == 302


@pytest.mark.parametrize(
    ("reported", "stored"),
    [
        ({"time_zone": "America/Argentina/Buenos_Aires"}, "America/Argentina/Buenos_Aires"),
        ({}, "UTC"),  # no script: the field keeps UTC
        ({"time_zone": "Not/AZone"}, "UTC"),
        ({"time_zone": "x" * 5000}, "UTC"),
    ],
)
def test_signup_records_the_zone_the_browser_reported(client, app, reported, stored):
    signup(client, **reported)
    user = db.session.scalars(db.select(User).where(User.username == "bob")).one()
    assert user.time_zone == stored


def test_signup_page_carries_the_zone_field_for_the_apps_script(client):
    page = html(client.get("/signup"))
    assert '<input type="hidden" name="time_zone" value="UTC" data-browser-zone>' in page
    with client.get("/static/js/app.js") as answer:
        script = html(answer)
    assert "data-browser-zone" in script and "resolvedOptions().timeZone" in script


def test_signup_in_german_makes_a_german_account(client):
    signup(client, headers=GERMAN)
    user = db.session.scalars(db.select(User).where(User.username == "bob")).one()
    assert user.language == "de"


# --- every time in the reader's zone ------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "zone", "signed_in"),
    [
        ("en", "UTC", "27 Nov 2026, 14:05 UTC"),
        ("en", "Asia/Tokyo", "27 Nov 2026, 23:05 JST"),
        ("de", "Asia/Tokyo", "27. Nov. 2026, 23:05 JST"),
        ("de", "Europe/Berlin", "27. Nov. 2026, 15:05 CET"),
        ("en", "America/New_York", "27 Nov 2026, 09:05 EST"),
        ("en", "Asia/Dubai", "27 Nov 2026, 18:05 +04:00"),
        ("en", "Pacific/Kiritimati", "28 Nov 2026, 04:05 +14:00"),
    ],
)
def test_device_page_times_are_in_the_users_zone(client, user, language, zone, signed_in):
    set_reader(user, language, zone)
    with time_machine.travel(datetime(2026, 11, 27, 14, 5, tzinfo=UTC), tick=False):
        login(client)
        page = html(client.get("/account/devices"))
    assert f"<dd>{signed_in}</dd>" in page


def test_summer_time_is_named_as_such(client, user):
    set_reader(user, "de", "Europe/Berlin")
    with time_machine.travel(datetime(2026, 7, 1, 10, 0, tzinfo=UTC), tick=False):
        login(client)
        page = html(client.get("/account/devices"))
    assert "<dd>1. Juli 2026, 12:00 CEST</dd>" in page


def test_member_since_is_the_date_in_the_users_zone(client, user):
    """Created at 23:30 UTC on 31 December: already 1 January in Tokyo."""
    user.created_at = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)
    set_reader(user, "en", "Asia/Tokyo")
    login(client)
    assert "<dd>1 January 2027</dd>" in html(client.get("/account"))


def test_a_zone_tzdata_no_longer_knows_reads_utc(client, user):
    set_reader(user, "en", "Atlantis/Lost_City")
    with time_machine.travel(datetime(2026, 11, 27, 14, 5, tzinfo=UTC), tick=False):
        login(client)
        page = client.get("/account/devices")
    assert page.status_code == 200
    assert "<dd>27 Nov 2026, 14:05 UTC</dd>" in html(page)


def test_throttle_message_names_the_time_in_the_readers_zone(app, client, user):
    from webapp.security.throttle import Throttled

    set_reader(user, "de", "Asia/Tokyo")
    login(client)
    until = datetime(2026, 11, 27, 14, 5, tzinfo=UTC).timestamp()
    with app.test_request_context("/"), time_machine.travel(until - 120, tick=False):
        from flask_login import login_user

        user.current_device = user.devices[0]
        login_user(user)
        message = Throttled(until).message
    assert message.startswith("Zu viele fehlgeschlagene Versuche.")
    assert "in 2 Minuten erneut (nach 23:05 JST)" in message


# --- mails in the recipient's language and zone ------------------------------------------------


@pytest.fixture
def app_config(app_config, mail_config):
    return {**app_config, **mail_config}


def test_notice_is_in_the_recipients_language_whatever_the_page(client, user, smtp):
    set_reader(user, "de", "Asia/Tokyo")
    client.set_cookie(LANGUAGE_COOKIE, "en")
    with time_machine.travel(datetime(2026, 11, 27, 14, 5, tzinfo=UTC), tick=False):
        login(client)
        post_form(
            client,
            "/account/password",
            {
                "current_password": TEST_PASSWORD,
                "new_password": "ein-ganz-neues-passwort-42",
                "confirm_new_password": "ein-ganz-neues-passwort-42",
            },
            headers=ENGLISH,
        )
    [notice] = smtp.to("alice@example.com")
    assert notice["Subject"] == "Ihr Keystone-Passwort wurde geändert"
    text = text_of(notice)
    assert text.startswith("Guten Tag alice,")
    assert "Am 27. Nov. 2026, 23:05 JST wurde das Passwort" in text
    assert "Chrome unter Linux" in text
    assert '<html lang="de">' in html_of(notice)


def test_mail_from_a_background_thread_is_in_the_recipients_language(app, client, user, smtp):
    set_reader(user, "de")
    app.config["MAIL_SEND_SYNC"] = False
    post_form(client, "/reset-password", {"email": "alice@example.com"}, headers=ENGLISH)
    assert wait_for_mail(app)
    [message] = smtp.to("alice@example.com")
    assert message["Subject"] == "Setzen Sie Ihr Keystone-Passwort zurück"
    assert "Der Link funktioniert einmal, " in text_of(message)


def test_mail_sent_outside_any_request_is_in_the_recipients_language(app, user, smtp):
    """As from the CLI: no request, no Accept-Language, only the recipient's choice."""
    set_reader(user, "de")
    send_reset_link("alice@example.com", None)
    [message] = smtp.to("alice@example.com")
    assert message["Subject"] == "Setzen Sie Ihr Keystone-Passwort zurück"
    assert "Guten Tag alice," in text_of(message)


def test_english_reader_still_gets_english_mail_after_a_german_one(app, user, make_user, smtp):
    """The language of one mail does not stick to the worker that sent it."""
    german = make_user("greta", "greta@example.com")
    set_reader(german, "de")
    send_reset_link("greta@example.com", None)
    send_reset_link("alice@example.com", None)
    [english] = smtp.to("alice@example.com")
    assert english["Subject"] == "Reset your Keystone password"
    assert "Hello alice," in text_of(english)


def test_translated_texts_escape_what_users_typed(client, new_client, user):
    """A translation is trusted HTML; the values put into it are not."""
    set_reader(user, "de")
    login(new_client())
    login(client)
    device = min(user.devices, key=lambda device: device.id)  # the other browser's
    post_form(
        client,
        f"/account/devices/{device.id}/rename",
        {"name": '<img src=x onerror="alert(1)">'},
        page="/account/devices",
    )
    page = html(client.get("/account/devices"))
    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt; abmelden?" in page


def test_relative_time_reads_in_the_readers_language(app):
    from webapp.i18n import for_reader
    from webapp.templating import format_ago

    with time_machine.travel(datetime(2026, 11, 27, 14, 5, tzinfo=UTC), tick=False):
        five_ago = datetime.now(UTC) - timedelta(minutes=5)
        with for_reader("de", "UTC"):
            assert format_ago(five_ago) == "vor 5 Minuten"
        with for_reader("en", "UTC"):
            assert format_ago(five_ago) == "5 minutes ago"


def test_language_cookie_is_host_only_and_secure_in_production(secure_app):
    client = secure_app.test_client()
    answer = client.get("/language/de?next=/login", base_url="https://localhost")
    header = answer.headers["Set-Cookie"]
    assert header.startswith("__Host-language=de;")
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
    assert "Path=/" in header and "Domain" not in header
    page = client.get("/login", base_url="https://localhost")
    assert lang_of(page) == "de"


def test_plural_texts_in_templates_escape_their_values(app):
    """Jinja fills in an ngettext text after marking it safe: the values are escaped."""
    with app.test_request_context("/"):
        template = app.jinja_env.from_string(
            "{{ ngettext('%(num)d key of %(name)s', '%(num)d keys of %(name)s', 2, name=who) }}"
        )
        assert template.render(who="<b>x</b>") == "2 keys of &lt;b&gt;x&lt;/b&gt;"


def test_waiting_mail_is_delivered_by_send_mail_in_the_recipients_language(app, client, user, smtp):
    """The outbox keeps the reader's language and zone; the CLI sender uses them, no request."""
    from webapp.models import OutboxMail

    set_reader(user, "de", "Asia/Tokyo")
    app.config["MAIL_DELIVER_INLINE"] = False
    with time_machine.travel(datetime(2026, 11, 27, 14, 5, tzinfo=UTC), tick=False):
        login(client)
        post_form(
            client,
            "/account/password",
            {
                "current_password": TEST_PASSWORD,
                "new_password": "ein-ganz-neues-passwort-42",
                "confirm_new_password": "ein-ganz-neues-passwort-42",
            },
            headers=ENGLISH,
        )
    assert smtp.to("alice@example.com") == []  # waiting in the outbox
    [row] = db.session.scalars(db.select(OutboxMail)).all()
    assert (row.locale, row.timezone) == ("de", "Asia/Tokyo")
    result = app.test_cli_runner().invoke(args=["send-mail", "--once"])
    assert "Delivered 1 mail." in result.output
    [notice] = smtp.to("alice@example.com")
    assert notice["Subject"] == "Ihr Keystone-Passwort wurde geändert"
    text = text_of(notice)
    assert text.startswith("Guten Tag alice,")
    assert "Am 27. Nov. 2026, 23:05 JST wurde das Passwort" in text
    assert '<html lang="de">' in html_of(notice)


def test_password_feedback_reads_in_the_readers_language(client):
    """zxcvbn answers in English; a German reader gets its reasons in German."""
    response = post_form(
        client,
        "/signup",
        {
            "username": "greta",
            "email": "greta@example.com",
            "password": "qwertyuiop",
            "confirm_password": "qwertyuiop",
        },
        headers=GERMAN,
    )
    page = html(response)
    assert "Dieses Passwort ist zu leicht zu erraten." in page
    assert "Dies ist eines der 100 häufigsten Passwörter." in page
    assert "Fügen Sie ein oder zwei Wörter hinzu. Ungewöhnliche Wörter sind besser." in page
    assert "easy to guess" not in page


def test_every_zxcvbn_feedback_text_is_listed_for_the_catalog():
    """A zxcvbn upgrade that adds a text fails here until it is listed (and translated)."""
    import ast
    from pathlib import Path

    import zxcvbn.feedback

    from webapp.security.password_feedback import FEEDBACK

    tree = ast.parse(Path(zxcvbn.feedback.__file__).read_text())
    texts = {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "_"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert texts and texts == set(FEEDBACK)
