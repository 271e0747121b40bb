"""Every page, signed out, signed in and as an admin, passes axe-core and our own checks."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from tests.browser.conftest import PASSWORD, login, signup, unique
from tests.browser.pages import remembered_only
from tests.browser.test_flows import RESET_LINK_RE

AXE = Axe()
# WCAG 2.1 AA and axe's best practices (landmarks, one main, headings, skip link).
AXE_OPTIONS = {
    "runOnly": {
        "type": "tag",
        "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"],
    },
    "resultTypes": ["violations"],
}
BLOCKING = {"serious", "critical"}
OTHER_BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"


def audit(page: Page, lang: str = "en") -> None:
    """Fail on any serious or critical axe violation, or a page that breaks our own rules."""
    results = AXE.run(page, options=AXE_OPTIONS).response
    blocking = [v for v in results["violations"] if v["impact"] in BLOCKING]
    assert not blocking, "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
        for v in blocking
    )
    ran = {rule["id"] for key in ("passes", "violations", "incomplete") for rule in results[key]}
    assert "color-contrast" in ran, "axe did not check the colour contrast"
    incomplete_contrast = [r for r in results["incomplete"] if r["id"] == "color-contrast"]
    assert not incomplete_contrast, [n["target"] for n in incomplete_contrast[0]["nodes"]]

    assert page.locator("html").get_attribute("lang") == lang
    expect(page.locator("h1")).to_have_count(1)
    title = page.title()
    assert re.fullmatch(r"\S.* · Keystone", title), f"title {title!r} does not name the page"

    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea')]
            .filter(el => !['hidden', 'submit', 'button', 'reset', 'image'].includes(el.type))
            .filter(el => ![...el.labels].some(label => label.textContent.trim()))
            .map(el => el.outerHTML)"""
    )
    assert not unlabelled, f"inputs without a label: {unlabelled}"

    # Each error message is read out with its field: aria-describedby names it.
    untied = page.evaluate(
        """() => [...document.querySelectorAll('.field-error')]
            .filter(error => !error.id || !document.querySelector(
                `[aria-describedby~="${error.id}"][aria-invalid="true"]`))
            .map(error => error.outerHTML)"""
    )
    assert not untied, f"errors not tied to their field: {untied}"
    dangling = page.evaluate(
        """() => [...document.querySelectorAll('[aria-describedby]')]
            .flatMap(el => el.getAttribute('aria-describedby').split(/\\s+/))
            .filter(id => !document.getElementById(id))"""
    )
    assert not dangling, f"aria-describedby names missing elements: {dangling}"


def submit_empty(button: str) -> Callable[[Page], None]:
    def act(page: Page) -> None:
        page.get_by_role("button", name=button, exact=True).click()
        expect(page.locator(".field-error, .form-alert").first).to_be_visible()

    return act


def wrong_login(page: Page) -> None:
    page.get_by_label("Username or email", exact=True).fill("nobody")
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("alert")).to_be_visible()


def request_reset_for(address: str) -> Callable[[Page], None]:
    def act(page: Page) -> None:
        page.get_by_label("Email", exact=True).fill(address)
        page.get_by_role("button", name="Send reset link", exact=True).click()
        expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")

    return act


def open_link(name: str) -> Callable[[Page], None]:
    def act(page: Page) -> None:
        page.locator("main").get_by_role("link", name=name, exact=True).first.click()
        page.wait_for_load_state()

    return act


SIGNED_OUT = {
    "landing": ("/", None),
    "signup": ("/signup", None),
    "signup-errors": ("/signup", submit_empty("Sign up")),
    "login": ("/login", None),
    "login-error": ("/login", wrong_login),
    "reset-request": ("/reset-password", None),
    "reset-request-errors": ("/reset-password", submit_empty("Send reset link")),
    "reset-sent": ("/reset-password", request_reset_for("nobody@example.com")),
    "reset-invalid-link": ("/reset-password/not-a-token", None),
    "not-found": ("/no-such-page", None),
}
SIGNED_IN = {
    "account": ("/account", None),
    "devices": ("/account/devices", None),
    "activity": ("/account/activity", None),
    "security": ("/account/security", None),
    "change-password": ("/account/password", None),
    "change-password-errors": ("/account/password", submit_empty("Change password")),
    "delete-account": ("/account/delete", None),
    "delete-account-errors": ("/account/delete", submit_empty("Delete account")),
    "forbidden": ("/admin/", None),
}
ADMIN = {
    "admin-home": ("/admin/", None),
    "admin-users": ("/admin/users", None),
    "admin-user": ("/admin/users", open_link("member-a11y")),
    "admin-roles": ("/admin/roles", None),
    "admin-roles-errors": ("/admin/roles", submit_empty("Create role")),
    "admin-role": ("/admin/roles", open_link("user")),
    "admin-audit": ("/admin/audit", None),
    "admin-devices": ("/account/devices", None),
}


def visit(page: Page, path: str, act: Callable[[Page], None] | None, lang: str = "en") -> None:
    """Open a page, bring it to the state to check, and audit it."""
    errors: list[str] = []
    # The strict CSP reports any inline script or style as a console error.
    page.on(
        "console",
        lambda m: (
            m.type == "error" and "Failed to load resource" not in m.text and errors.append(m.text)
        ),
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "response",
        lambda r: (
            r.status >= 400
            and r.request.resource_type != "document"
            and errors.append(f"{r.status} {r.url}")
        ),
    )
    page.goto(path)
    if act:
        act(page)
    audit(page, lang)
    assert not errors, errors


@pytest.fixture(scope="module")
def member_state(browser, server) -> dict:
    """Cookies of a member signed in on two browsers (so the devices page has rows)."""
    context = browser.new_context(base_url=server.url, user_agent=OTHER_BROWSER)
    signup(context.new_page(), "member-a11y")
    context.close()
    context = browser.new_context(base_url=server.url)
    login(context.new_page(), "member-a11y", remember=True)
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture(scope="module")
def admin_state(browser, server, admin_account, member_state) -> dict:
    context = browser.new_context(base_url=server.url)
    login(context.new_page(), admin_account["username"], admin_account["password"])
    state = context.storage_state()
    context.close()
    return state


@pytest.mark.parametrize(("path", "act"), SIGNED_OUT.values(), ids=SIGNED_OUT.keys())
def test_signed_out_pages(page, path, act):
    visit(page, path, act)


@pytest.mark.parametrize(("path", "act"), SIGNED_IN.values(), ids=SIGNED_IN.keys())
def test_signed_in_pages(new_context, member_state, path, act):
    visit(new_context(storage_state=member_state).new_page(), path, act)


@pytest.mark.parametrize(("path", "act"), ADMIN.values(), ids=ADMIN.keys())
def test_admin_pages(new_context, admin_state, path, act):
    visit(new_context(storage_state=admin_state).new_page(), path, act)


def test_confirm_password_page(new_context):
    page = remembered_only(new_context, unique())

    visit(page, "/account/password", None)
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your password")
    page.get_by_label("Password", exact=True).fill("not it")
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
    audit(page)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Confirm", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Change your password")


def test_phone_width_pages_pass_too(new_context, member_state):
    page = new_context(
        storage_state=member_state, viewport={"width": 390, "height": 844}
    ).new_page()
    for path in ("/account", "/account/devices", "/account/password", "/account/activity"):
        visit(page, path, None)


def test_choose_a_new_password_page(new_page, mailbox):
    username = unique()
    signup(new_page(), username)
    page = new_page()
    visit(page, "/reset-password", request_reset_for(f"{username}@example.com"))
    body = mailbox.to(f"{username}@example.com")[-1].get_body(preferencelist=("plain",))
    link = RESET_LINK_RE.search(body.get_content()).group(0)

    visit(page, link, None)
    expect(page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
    visit(page, link, submit_empty("Set password"))


NOT_ME_RE = re.compile(r"https?://\S+/not-me/[A-Za-z0-9_-]{43}")


def test_this_wasnt_me_pages(new_context, mailbox):
    """The "This wasn't me" link of a new-sign-in mail: its page, then the link used up."""
    username = unique()
    signup(new_context().new_page(), username)
    login(new_context(user_agent=OTHER_BROWSER).new_page(), username)
    [alert] = [
        m
        for m in mailbox.to(f"{username}@example.com")
        if m["Subject"] == "New sign-in to your Keystone account"
    ]
    body = alert.get_body(preferencelist=("plain",)).get_content()
    link = NOT_ME_RE.search(body).group(0)

    page = new_context().new_page()
    visit(page, link, None)
    expect(page.get_by_role("heading", level=1)).to_have_text("Was this sign-in not you?")
    page.get_by_role("button", name="Sign out that device", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Reset your password")
    visit(page, link, None)
    expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")


# --- German: axe on every page, and nothing wider than a phone -----------------------

PHONE = {"width": 390, "height": 844}
GERMAN_SIGNED_OUT = ["/", "/signup", "/login", "/reset-password", "/reset-password/x", "/nope"]
GERMAN_SIGNED_IN = [
    "/account",
    "/account/devices",
    "/account/activity",
    "/account/security",
    "/account/security/totp",
    "/account/password",
    "/account/email",
    "/account/delete",
    "/admin/",
]
GERMAN_ADMIN = ["/admin/", "/admin/users", "/admin/roles", "/admin/audit", "/account/devices"]


def assert_fits(page: Page) -> None:
    """Fail when anything on the page is wider than the window (German words are long)."""
    wider = page.evaluate(
        """() => {
            const width = document.documentElement.clientWidth;
            const inScroller = el => el.closest('.table-wrap');
            return [...document.querySelectorAll('body *')]
                .filter(el => !inScroller(el) && el.getBoundingClientRect().right > width + 1)
                .map(el => `${el.tagName}.${el.className}: ${el.textContent.trim().slice(0, 40)}`);
        }"""
    )
    assert not wider, f"wider than the phone: {wider}"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def switch_to_german(page: Page) -> None:
    """Choose "Deutsch" under Preferences on /account, as the person would."""
    page.goto("/account")
    page.get_by_label("Language", exact=True).select_option("de")
    page.get_by_role("button", name="Save preferences", exact=True).click()
    expect(page.locator("html")).to_have_attribute("lang", "de")


@pytest.fixture(scope="module")
def german_member_state(browser, server) -> dict:
    context = browser.new_context(base_url=server.url, locale="de-DE")
    page = context.new_page()
    signup_german(page, unique("mitglied"))
    state = context.storage_state()
    context.close()
    return state


def signup_german(page: Page, username: str) -> None:
    """Sign up on the German signup page: the account then reads German."""
    page.goto("/signup")
    page.get_by_label("Benutzername", exact=True).fill(username)
    page.get_by_label("E-Mail-Adresse", exact=True).fill(f"{username}@example.com")
    page.get_by_label("Passwort", exact=True).fill(PASSWORD)
    page.get_by_label("Passwort bestätigen", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Registrieren", exact=True).click()
    expect(page).to_have_url(re.compile(r"/account$"))


@pytest.mark.parametrize("width", [None, PHONE], ids=["desktop", "phone"])
def test_german_signed_out_pages(new_context, width):
    options = {"viewport": width} if width else {}
    page = new_context(locale="de-DE", **options).new_page()
    for path in GERMAN_SIGNED_OUT:
        visit(page, path, None, lang="de")
        assert_fits(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Seite nicht gefunden")


def test_german_login_page_reads_anmelden_and_passwort(new_context):
    page = new_context(locale="de-DE").new_page()
    page.goto("/login")
    expect(page.get_by_label("Passwort", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Anmelden", exact=True)).to_be_visible()
    visit(page, "/login", submit_empty("Anmelden"), lang="de")


@pytest.mark.parametrize("width", [None, PHONE], ids=["desktop", "phone"])
def test_german_signed_in_pages(new_context, german_member_state, width):
    options = {"viewport": width} if width else {}
    page = new_context(storage_state=german_member_state, **options).new_page()
    for path in GERMAN_SIGNED_IN:
        visit(page, path, None, lang="de")
        assert_fits(page)


@pytest.mark.parametrize("width", [None, PHONE], ids=["desktop", "phone"])
def test_german_admin_pages(new_context, admin_state, width):
    options = {"viewport": width} if width else {}
    context = new_context(storage_state=admin_state, **options)
    page = context.new_page()
    switch_to_german(page)
    try:
        for path in GERMAN_ADMIN:
            visit(page, path, None, lang="de")
            assert_fits(page)
    finally:
        page.goto("/account")
        page.get_by_label("Sprache", exact=True).select_option("en")
        page.get_by_role("button", name="Einstellungen speichern", exact=True).click()


def test_the_footer_link_switches_a_visitor_to_german(new_context):
    page = new_context(locale="en-US").new_page()
    page.goto("/login")
    page.get_by_role("navigation", name="Language").get_by_role("link", name="Deutsch").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator("html")).to_have_attribute("lang", "de")
    expect(page.get_by_role("button", name="Anmelden", exact=True)).to_be_visible()


def test_signup_records_the_browsers_time_zone(new_context):
    """The app's own script fills the hidden field: times then read in the browser's zone."""
    page = new_context(timezone_id="Asia/Tokyo").new_page()
    signup(page, unique("tokyo"))
    page.goto("/account/devices")
    expect(page.locator(".device-facts dd").filter(has_text="JST").first).to_be_visible()
    page.goto("/account")
    expect(page.get_by_label("Time zone", exact=True)).to_have_value("Asia/Tokyo")
