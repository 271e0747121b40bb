"""Passkeys in a real Chromium, with its virtual authenticator (the CDP WebAuthn domain).

The app runs at http://localhost:PORT with PUBLIC_URL to match (a relying
party ID cannot be an IP address). Each page gets a platform authenticator
(CTAP2, internal, resident keys, user verification) that Chromium drives
exactly as it would a fingerprint reader.
"""

from __future__ import annotations

import re

from playwright.sync_api import CDPSession, Page, expect

from tests.browser.conftest import login, signup, unique
from tests.browser.test_accessibility import audit, visit
from tests.browser.test_keyboard import fill_by_keyboard, tab_to

SECURITY = "/account/security"
NOT_VERIFIED = re.compile(r"could not verify you|could not be verified")


class Authenticator:
    """A virtual platform authenticator attached to one page."""

    def __init__(self, page: Page, **options) -> None:
        self.cdp: CDPSession = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable")
        found = self.cdp.send(
            "WebAuthn.addVirtualAuthenticator",
            {
                "options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": True,
                    "hasUserVerification": True,
                    "isUserVerified": True,
                    **options,
                }
            },
        )
        self.id = found["authenticatorId"]

    def credentials(self) -> list[dict]:
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})["credentials"]

    def set_user_verified(self, verified: bool) -> None:
        self.cdp.send(
            "WebAuthn.setUserVerified", {"authenticatorId": self.id, "isUserVerified": verified}
        )


def add_passkey(page: Page, name: str) -> None:
    page.goto(SECURITY)
    page.get_by_label("Passkey name", exact=True).fill(name)
    page.get_by_role("button", name="Add a passkey", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text(f"Passkey “{name}” added.")


def passkey_row(page: Page, name: str):
    return page.locator(".passkey", has=page.locator(".passkey-name", has_text=name))


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def passkey_user(page: Page, name: str = "Laptop") -> tuple[str, Authenticator]:
    """Sign up a new user on `page`, attach an authenticator and add a passkey on it."""
    username = unique("passkey")
    signup(page, username)
    authenticator = Authenticator(page)
    add_passkey(page, name)
    return username, authenticator


def test_add_a_passkey_log_out_and_log_in_with_it(page):
    username, authenticator = passkey_user(page, "Work laptop")

    row = passkey_row(page, "Work laptop")
    expect(row).to_be_visible()
    expect(row.locator("dt", has_text="Added")).to_be_visible()
    expect(row.locator("dt", has_text="Last used").locator("xpath=..").locator("dd")).to_have_text(
        "Never"
    )
    [credential] = authenticator.credentials()
    assert credential["isResidentCredential"] is True
    assert credential["rpId"] == "localhost"

    log_out(page)
    page.get_by_label("Remember this device", exact=True).check()
    page.get_by_role("button", name="Log in with a passkey", exact=True).click()

    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    assert "remember" in {c["name"] for c in page.context.cookies()}
    page.goto(SECURITY)
    expect(
        passkey_row(page, "Work laptop").locator("dt", has_text="Last used").locator("xpath=..")
    ).not_to_contain_text("Never")
    assert authenticator.credentials()[0]["signCount"] >= 1
    assert username


def test_use_a_passkey_to_confirm_a_sensitive_action(page, new_page):
    username = unique("passkey")
    signup(page, username)
    other = new_page()
    login(other, username)  # another browser, to sign out (before a second factor exists)
    Authenticator(page)
    add_passkey(page, "Laptop")
    log_out(page)
    page.get_by_label("Remember this device", exact=True).check()
    page.get_by_role("button", name="Log in with a passkey", exact=True).click()
    expect(page).to_have_url(re.compile(r"/account$"))
    # Only the remember cookie left: signed in, but not fresh.
    page.context.clear_cookies(name="session")

    page.goto("/account/devices")
    page.get_by_role("button", name="Sign out all other devices").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your password")
    page.get_by_role("button", name="Use a passkey", exact=True).click()

    expect(page).to_have_url(re.compile(r"/account/devices$"))
    expect(page.get_by_role("status")).to_contain_text("Signed out 1 other device")
    other.goto("/account")
    expect(other).to_have_url(re.compile(r"/login\?"))


def test_a_device_that_cannot_verify_the_user_gets_a_clear_message(page):
    _, authenticator = passkey_user(page)
    log_out(page)

    authenticator.set_user_verified(False)
    page.get_by_role("button", name="Log in with a passkey", exact=True).click()

    expect(page.get_by_role("alert")).to_contain_text(NOT_VERIFIED)
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.locator("body")).not_to_contain_text("NotAllowedError")
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login\?"))


def test_a_removed_passkey_no_longer_signs_in(page):
    passkey_user(page, "Old key")
    passkey_row(page, "Old key").get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status")).to_contain_text("Passkey “Old key” removed.")
    expect(page.get_by_text("You have no passkeys yet.")).to_be_visible()

    log_out(page)
    page.get_by_role("button", name="Log in with a passkey", exact=True).click()

    expect(page.get_by_role("alert")).to_contain_text("That passkey is not registered here.")
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login\?"))


def test_the_wrong_address_gives_a_clear_message(browser, server):
    """Opened at 127.0.0.1 rather than localhost, the browser refuses the RP ID."""
    context = browser.new_context(base_url=server.url.replace("localhost", "127.0.0.1"))
    try:
        page = context.new_page()
        Authenticator(page)
        page.goto("/login")
        page.get_by_role("button", name="Log in with a passkey", exact=True).click()
        expect(page.get_by_role("alert")).to_contain_text("Passkeys do not work at this address")
    finally:
        context.close()


def test_rename_a_passkey(page):
    passkey_user(page, "First name")
    row = passkey_row(page, "First name")
    row.get_by_label("New name").fill("Second name")
    row.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("status")).to_contain_text("Passkey renamed.")
    expect(passkey_row(page, "Second name")).to_be_visible()


def test_passkey_pages_pass_axe(page):
    passkey_user(page, "Axe key")
    visit(page, SECURITY, None)
    page.get_by_label("Passkey name", exact=True).fill("")
    page.get_by_role("button", name="Add a passkey", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("Give the passkey a name")
    audit(page)
    page.set_viewport_size({"width": 390, "height": 844})
    visit(page, SECURITY, None)
    log_out(page)
    visit(page, "/login", None)


def test_confirm_page_with_a_passkey_passes_axe(page):
    passkey_user(page)
    log_out(page)
    page.get_by_label("Remember this device", exact=True).check()
    page.get_by_role("button", name="Log in with a passkey", exact=True).click()
    expect(page).to_have_url(re.compile(r"/account$"))
    page.context.clear_cookies(name="session")
    visit(page, "/account/password", None)
    expect(page.get_by_role("button", name="Use a passkey", exact=True)).to_be_visible()


def test_add_a_passkey_and_log_in_with_it_by_keyboard(page):
    username = unique("passkey")
    signup(page, username)
    Authenticator(page)
    page.goto(SECURITY)
    fill_by_keyboard(page, {"Passkey name": "Keyboard key"})
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Passkey “Keyboard key” added.")

    log_out(page)
    tab_to(page, page.get_by_role("button", name="Log in with a passkey", exact=True))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/account$"))


def test_a_passkey_as_the_second_step_after_the_password(page):
    username, _ = passkey_user(page)
    log_out(page)
    login(page, username, lands=r"/login/verify$")
    page.get_by_role("button", name="Use a passkey", exact=True).click()
    expect(page).to_have_url(re.compile(r"/account$"))
    audit(page)
