"""What a person does in a real browser: sign up, log in, manage devices, reset, administer."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import (
    NEW_PASSWORD,
    PASSWORD,
    expect_signed_out,
    login,
    set_up_authenticator,
    signup,
    unique,
)

RESET_LINK_RE = re.compile(r"https?://\S+/reset-password/[A-Za-z0-9_.\-]+")


def details(page: Page, term: str):
    """Return the value shown next to `term` on a page of details."""
    return page.locator(".details div", has=page.locator("dt", has_text=term)).locator("dd")


def test_signup_lands_on_the_account_page(page):
    username = unique()
    signup(page, username)

    expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    expect(details(page, "Username")).to_have_text(username)
    expect(details(page, "Email")).to_have_text(f"{username}@example.com")
    expect(details(page, "Role")).to_have_text("user")
    expect(details(page, "Member since")).not_to_be_empty()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def test_signup_errors_show_next_to_their_fields(page):
    page.goto("/signup")
    page.get_by_label("Username", exact=True).fill("x")
    page.get_by_label("Email", exact=True).fill("not-an-email")
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_label("Confirm password", exact=True).fill("other")
    page.get_by_role("button", name="Sign up", exact=True).click()

    expect(page).to_have_url(re.compile(r"/signup$"))
    for label in ("Username", "Email", "Password"):
        field = page.get_by_label(label, exact=True)
        expect(field).to_have_attribute("aria-invalid", "true")
        error_id = field.get_attribute("aria-describedby").split()[-1]
        expect(page.locator(f"#{error_id}")).to_be_visible()


def test_logout_lands_on_the_login_page(page):
    signup(page, unique())
    page.get_by_role("button", name="Log out").click()

    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
    expect_signed_out(page)


def test_wrong_password_shows_the_generic_message(page, new_page):
    username = unique()
    signup(new_page(), username)

    page.goto("/login")
    page.get_by_label("Username or email", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill("not the password")
    page.get_by_role("button", name="Log in", exact=True).click()

    expect(page.get_by_role("alert")).to_have_text("Invalid username/email or password.")
    expect_signed_out(page)


def test_login_redirects_back_to_the_page_asked_for(page, new_page):
    username = unique()
    signup(new_page(), username)

    page.goto("/account/devices")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Faccount%2Fdevices$"))
    page.get_by_label("Username or email", exact=True).fill(f"{username}@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()

    expect(page).to_have_url(re.compile(r"/account/devices$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Your devices")


def test_a_remembered_device_stays_signed_in_without_its_session(new_context):
    username = unique()
    first = new_context()
    page = first.new_page()
    signup(page, username)
    page.get_by_role("button", name="Log out").click()
    login(page, username, remember=True)

    cookies = first.cookies()
    names = {c["name"] for c in cookies}
    assert {"session", "remember"} <= names
    # A browser restarted: the session cookie is gone, the remember cookie is not.
    restarted = new_context()
    restarted.add_cookies([c for c in cookies if c["name"] != "session"])
    again = restarted.new_page()
    again.goto("/account")

    expect(again).to_have_url(re.compile(r"/account$"))
    expect(details(again, "Username")).to_have_text(username)
    # Restored from a cookie, the session is not fresh: a sensitive page asks first.
    again.goto("/account/password")
    expect(again.get_by_role("heading", level=1)).to_have_text("Confirm your password")
    again.get_by_label("Password", exact=True).fill(PASSWORD)
    again.get_by_role("button", name="Confirm", exact=True).click()
    expect(again.get_by_role("heading", level=1)).to_have_text("Change your password")


def test_without_remember_a_new_browser_is_signed_out(new_context):
    first = new_context()
    page = first.new_page()
    signup(page, unique())
    assert "remember" not in {c["name"] for c in first.cookies()}

    restarted = new_context()
    restarted.add_cookies([c for c in first.cookies() if c["name"] != "session"])
    expect_signed_out(restarted.new_page())


def test_revoking_a_device_signs_that_browser_out(new_page):
    username = unique()
    laptop = new_page()
    signup(laptop, username)
    phone = new_page(
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
    )
    login(phone, username)

    laptop.get_by_role("link", name="Devices", exact=True).click()
    expect(laptop.get_by_role("heading", level=1)).to_have_text("Your devices")
    rows = laptop.locator(".device")
    expect(rows).to_have_count(2)
    expect(laptop.locator(".device-current")).to_contain_text("This device")
    other = laptop.locator(".device:not(.device-current)")
    expect(other).to_contain_text("Mobile Safari on iOS")
    other.get_by_role("button", name=re.compile(r"^Revoke")).click()

    expect(laptop.get_by_role("status")).to_have_text("That device is signed out.")
    expect(laptop.locator(".device")).to_have_count(1)
    # The phone's next click lands on the login page.
    phone.get_by_role("link", name="Devices", exact=True).click()
    expect(phone).to_have_url(re.compile(r"/login(\?|$)"))
    # The laptop carries on.
    laptop.goto("/account")
    expect(laptop).to_have_url(re.compile(r"/account$"))


def test_sign_out_all_other_devices(new_page):
    username = unique()
    mine = new_page()
    signup(mine, username)
    others = [new_page() for _ in range(2)]
    for other in others:
        login(other, username)

    mine.goto("/account/devices")
    expect(mine.locator(".device")).to_have_count(3)
    mine.get_by_role("button", name="Sign out all other devices").click()

    expect(mine.get_by_role("status")).to_have_text("Signed out 2 other devices.")
    expect(mine.locator(".device")).to_have_count(1)
    for other in others:
        expect_signed_out(other)


def test_changing_the_password_signs_out_the_other_browser(new_page):
    username = unique()
    here = new_page()
    signup(here, username)
    there = new_page()
    login(there, username, remember=True)

    here.goto("/account")
    here.get_by_role("link", name="Change your password").click()
    here.get_by_label("Current password", exact=True).fill(PASSWORD)
    here.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    here.get_by_label("Confirm new password", exact=True).fill(NEW_PASSWORD)
    here.get_by_role("button", name="Change password", exact=True).click()

    expect(here).to_have_url(re.compile(r"/account$"))
    expect(here.get_by_role("status")).to_contain_text("Your password is changed.")
    # Session and remember cookie both stop working in the other browser.
    expect_signed_out(there)
    login(there, username, NEW_PASSWORD)


def test_password_reset_through_the_mail(new_page, mailbox):
    username = unique()
    address = f"{username}@example.com"
    elsewhere = new_page()
    signup(elsewhere, username)

    page = new_page()
    page.goto("/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page).to_have_url(re.compile(r"/reset-password$"))
    page.get_by_label("Email", exact=True).fill(address)
    page.get_by_role("button", name="Send reset link", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")

    # Signup mailed a confirmation link first; exactly one reset mail follows.
    messages = [m for m in mailbox.to(address) if m["Subject"] == "Reset your Keystone password"]
    assert len(messages) == 1
    body = messages[0].get_body(preferencelist=("plain",)).get_content()
    link = RESET_LINK_RE.search(body).group(0)
    page.goto(link)
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Confirm new password", exact=True).fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password", exact=True).click()

    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_contain_text("Your password is set.")
    expect_signed_out(elsewhere)
    login(page, username, NEW_PASSWORD)
    # The link works once.
    page.get_by_role("button", name="Log out").click()
    page.goto(link)
    expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")


def test_delete_account(new_page):
    username = unique()
    page = new_page()
    signup(page, username)
    page.get_by_role("link", name="Delete your account").click()
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Delete account", exact=True).click()

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("status")).to_have_text("Your account is deleted.")
    page.goto("/login")
    page.get_by_label("Username or email", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Invalid username/email or password.")


def test_admin_changes_a_role_and_deactivates_a_signed_in_user(new_page, admin_account):
    username = unique()
    member = new_page()
    signup(member, username)
    # With an authenticator app, as the admin role she is about to get requires.
    set_up_authenticator(member)
    nav = member.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Admin")).to_have_count(0)
    member.goto("/admin/")
    expect(member.get_by_role("heading", level=1)).to_have_text("Forbidden")

    admin = new_page()
    login(admin, admin_account["username"], admin_account["password"])
    admin.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    admin.get_by_role("link", name="Users", exact=True).first.click()
    admin.get_by_label("Search", exact=True).fill(username)
    with admin.expect_navigation():
        admin.keyboard.press("Enter")
    admin.get_by_role("link", name=username, exact=True).click()
    expect(admin.get_by_role("heading", level=1)).to_have_text(username)
    admin.get_by_label("Role", exact=True).select_option("admin")
    admin.get_by_role("button", name="Save role", exact=True).click()
    expect(details(admin, "Role")).to_have_text("admin")

    # The member's next request sees the new role.
    member.goto("/account")
    expect(details(member, "Role")).to_have_text("admin")
    member.get_by_role("navigation", name="Main").get_by_role("link", name="Admin").click()
    expect(member.get_by_role("heading", level=1)).to_have_text("Admin")

    admin.get_by_role("button", name="Deactivate", exact=True).click()
    expect(details(admin, "Status")).to_have_text("Deactivated")
    expect(admin.get_by_role("button", name="Activate", exact=True)).to_be_visible()

    # Deactivated: the member's next navigation lands on the login page...
    member.get_by_role("link", name="Account", exact=True).click()
    expect(member).to_have_url(re.compile(r"/login(\?|$)"))
    # ...and logging in again does not work.
    member.get_by_label("Username or email", exact=True).fill(username)
    member.get_by_label("Password", exact=True).fill(PASSWORD)
    member.get_by_role("button", name="Log in", exact=True).click()
    expect(member.get_by_role("alert")).to_have_text("Invalid username/email or password.")
    expect_signed_out(member)
