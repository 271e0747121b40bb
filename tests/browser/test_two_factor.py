"""Two-factor authentication in a real Chromium: set-up from the page, a login
with the app's code, recovery codes, an admin's first sign-in, axe and keyboard."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    ADMIN_PASSWORD,
    PASSWORD,
    login,
    set_up_authenticator,
    signup,
    totp_code,
    unique,
)
from tests.browser.test_accessibility import audit, visit
from tests.browser.test_keyboard import fill_by_keyboard, tab_to

ROLE_REQUIRES = "Your role requires two-factor authentication."


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))


def second_step(page: Page, username: str) -> None:
    """Send the password and land on the code step."""
    page.goto("/login")
    page.get_by_label("Username or email", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login/verify$"))


def verify(page: Page, code: str) -> None:
    page.get_by_label("Authentication code", exact=True).fill(code)
    page.get_by_role("button", name="Verify", exact=True).click()


def test_set_up_log_out_and_log_in_with_a_code(page):
    username = unique()
    signup(page, username)
    secret, codes = set_up_authenticator(page)
    assert len(codes) == 10 and len(set(codes)) == 10

    # Shown once: coming back to the page shows no codes.
    page.goto("/account/security/recovery-codes")
    expect(page).to_have_url(re.compile(r"/account/security$"))
    expect(page.locator("ul.recovery-codes")).to_have_count(0)
    expect(page.get_by_text("10 left")).to_be_visible()

    log_out(page)
    second_step(page, username)
    page.goto("/account")  # mid-step, still signed out
    expect(page).to_have_url(re.compile(r"/login\?next="))
    second_step(page, username)
    verify(page, totp_code(secret))
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_each_recovery_code_works_once(page):
    username = unique()
    signup(page, username)
    _, codes = set_up_authenticator(page)
    log_out(page)

    second_step(page, username)
    verify(page, codes[0])
    expect(page).to_have_url(re.compile(r"/account$"))
    log_out(page)

    second_step(page, username)
    verify(page, codes[0])
    expect(page.get_by_text("That code is not right.")).to_be_visible()
    verify(page, codes[1])
    expect(page).to_have_url(re.compile(r"/account$"))
    page.goto("/account/security")
    expect(page.get_by_text("8 left")).to_be_visible()


def test_a_new_admin_sets_up_two_factor_at_the_first_sign_in(new_page, server):
    username = unique("boss")
    server.create_admin(username, f"{username}@example.com", ADMIN_PASSWORD)
    page = new_page()
    login(page, username, ADMIN_PASSWORD, lands=r"/account/security$")
    expect(page.get_by_role("status").or_(page.get_by_role("alert")).first).to_have_text(
        ROLE_REQUIRES
    )
    page.goto("/admin/")
    expect(page).to_have_url(re.compile(r"/account/security$"))
    set_up_authenticator(page)
    page.goto("/admin/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Admin")


def test_new_pages_pass_axe(new_page, admin_account):
    username = unique()
    page = new_page()
    signup(page, username)
    visit(page, "/account/security", None)
    visit(page, "/account/security/totp", None)
    page.get_by_label("Authentication code", exact=True).fill("12")
    page.get_by_role("button", name="Turn on", exact=True).click()
    expect(page.get_by_label("Authentication code", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    audit(page)
    secret = "".join(page.locator("#setup-key").inner_text().split())
    page.get_by_label("Authentication code", exact=True).fill(totp_code(secret))
    page.get_by_role("button", name="Turn on", exact=True).click()
    expect(page.locator("ul.recovery-codes li")).to_have_count(10)
    audit(page)
    visit(page, "/account/security", None)
    log_out(page)

    second_step(page, username)
    audit(page)
    verify(page, "000000")
    expect(page.get_by_label("Authentication code", exact=True)).to_have_attribute(
        "aria-invalid", "true"
    )
    audit(page)

    admin = new_page()
    login(admin, admin_account["username"], admin_account["password"])
    admin.goto("/admin/users")
    admin.get_by_label("Search", exact=True).fill(username)
    with admin.expect_navigation():
        admin.keyboard.press("Enter")
    admin.get_by_role("link", name=username, exact=True).click()
    expect(admin.get_by_text("Reset two-factor")).to_be_visible()
    audit(admin)
    visit(admin, "/admin/roles", None)


def test_set_up_and_log_in_by_keyboard_alone(page):
    username = unique()
    signup(page, username)
    page.goto("/account/security")
    link = page.get_by_role("button", name="Set up authenticator app", exact=True)
    tab_to(page, link)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up an authenticator app")
    secret = "".join(page.locator("#setup-key").inner_text().split())
    fill_by_keyboard(page, {"Authentication code": totp_code(secret)})
    tab_to(page, page.get_by_role("button", name="Turn on", exact=True))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")

    page.get_by_role("button", name="Log out").click()
    page.goto("/login")
    fill_by_keyboard(page, {"Username or email": username, "Password": PASSWORD})
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/login/verify$"))
    fill_by_keyboard(page, {"Authentication code": totp_code(secret)})
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/account$"))
