"""The passkey findings of issue 25, in a real Chromium with its virtual authenticator.

Each test performs the attack: a lost or planted passkey after an admin's
reset, a copied session of the device that adds a first passkey, a passkey
sign-in to an unconfirmed account in mandatory mode, and the devices a
removed passkey signed in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PASSWORD, TIMEOUT_MS, expect_signed_out, login, signup, unique
from tests.browser.server import LiveServer, live_server
from tests.browser.test_email import link_in
from tests.browser.test_passkeys import SECURITY, Authenticator, add_passkey, log_out, passkey_row


def copy_of(page: Page, new_page) -> Page:
    """Another browser holding a copy of `page`'s cookies, as a thief with them would."""
    thief = new_page()
    thief.context.add_cookies(page.context.cookies())
    return thief


def log_in_with_passkey(page: Page, remember: bool = False) -> None:
    page.goto("/login")
    if remember:
        page.get_by_label("Remember this device", exact=True).check()
    page.get_by_role("button", name="Log in with a passkey", exact=True).click()


def test_an_admins_two_factor_reset_leaves_no_passkey_that_signs_in(page, new_page, admin_account):
    username = unique("lost")
    signup(page, username)
    authenticator = Authenticator(page)
    add_passkey(page, "Lost phone")

    admin = new_page()
    login(admin, admin_account["username"], admin_account["password"])
    admin.goto("/admin/users")
    admin.get_by_label("Search", exact=True).fill(username)
    with admin.expect_navigation():
        admin.keyboard.press("Enter")
    admin.get_by_role("link", name=username, exact=True).click()
    admin.get_by_role("button", name="Reset two-factor", exact=True).click()
    expect(admin.get_by_role("status")).to_contain_text("1 passkey")
    expect(admin.locator("dt", has_text="Two-factor").locator("xpath=..")).to_contain_text("Off")

    # Whoever has the phone now: the passkey is still on it, and signs in nowhere.
    assert len(authenticator.credentials()) == 1
    expect_signed_out(page)
    log_in_with_passkey(page)
    expect(page.get_by_role("alert")).to_contain_text("That passkey is not registered here.")
    expect_signed_out(page)


def test_a_first_passkey_signs_out_a_copied_session_of_the_device(page, new_page):
    username = unique("copied")
    signup(page, username)
    thief = copy_of(page, new_page)
    thief.goto("/account")
    expect(thief).to_have_url(re.compile(r"/account$"))

    Authenticator(page)
    add_passkey(page, "Laptop")

    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/account$"))
    expect_signed_out(thief)


def test_removing_a_passkey_signs_out_the_devices_it_signed_in(page, new_page):
    username = unique("removed")
    signup(page, username)
    authenticator = Authenticator(page)
    add_passkey(page, "Old phone")
    [credential] = authenticator.credentials()

    # Another browser, with the same passkey (a copy of it), signs in and is remembered.
    other = new_page()
    elsewhere = Authenticator(other)
    elsewhere.cdp.send(
        "WebAuthn.addCredential", {"authenticatorId": elsewhere.id, "credential": credential}
    )
    log_in_with_passkey(other, remember=True)
    expect(other).to_have_url(re.compile(r"/account$"))

    page.goto(SECURITY)
    passkey_row(page, "Old phone").get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status")).to_contain_text(
        "1 device that signed in with it is signed out"
    )
    # Gone, remember cookie and all; the browser that removed it stays.
    other.context.clear_cookies(name="session")
    expect_signed_out(other)
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/account$"))


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory, smtp) -> Iterator[LiveServer]:
    """A server with EMAIL_VERIFICATION=mandatory, on a database of its own."""
    with live_server(
        tmp_path_factory.mktemp("strict-passkeys"),
        smtp_port=smtp[1],
        extra_env={"EMAIL_VERIFICATION": "mandatory"},
        database="strict_passkeys",
    ) as running:
        yield running


@pytest.fixture
def strict_page(browser: Browser, strict_server) -> Iterator[Page]:
    context = browser.new_context(base_url=strict_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    context.on("page", lambda opened: opened.on("dialog", lambda dialog: dialog.accept()))
    yield context.new_page()
    context.close()


def test_a_passkey_does_not_sign_in_an_unconfirmed_account_in_mandatory_mode(
    strict_page, strict_server, mailbox
):
    page = strict_page
    username = unique("strict")
    page.goto("/signup")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Email", exact=True).fill(f"{username}@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign up", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    page.goto(link_in(mailbox, f"{username}@example.com"))
    page.get_by_role("button", name="Confirm email address", exact=True).click()
    login(page, username)
    Authenticator(page)
    add_passkey(page, "Laptop")
    log_out(page)

    # An account from before confirmation was mandatory: its address was never confirmed.
    engine = sa.create_engine(strict_server.database_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE users SET email_verified_at = NULL WHERE username = :name"),
            {"name": username},
        )
    engine.dispose()

    log_in_with_passkey(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
    expect_signed_out(page)
