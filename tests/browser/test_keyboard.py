"""Every form works from the keyboard alone, and the focus is always visible."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import NEW_PASSWORD, PASSWORD, login, signup, unique
from tests.browser.pages import remembered_only
from tests.browser.test_flows import RESET_LINK_RE, details

MAX_TABS = 40
FOCUS_STYLE = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  return {
    tag: el.outerHTML.slice(0, 120),
    outline: style.outlineStyle,
    width: parseFloat(style.outlineWidth),
    visible: el.getClientRects().length > 0 && el.getBoundingClientRect().right > 0,
  };
}"""


def assert_focus_visible(page: Page) -> None:
    """The focused element draws an outline, and is on screen."""
    focus = page.evaluate(FOCUS_STYLE)
    assert focus["outline"] != "none" and focus["width"] > 0, f"no focus ring on {focus['tag']}"
    assert focus["visible"], f"focused element off screen: {focus['tag']}"


def tab_to(page: Page, target: Locator) -> None:
    """Press Tab until `target` has the focus, checking every stop shows its focus."""
    page.wait_for_load_state()
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        assert_focus_visible(page)
        if target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"Tab never reached {target}")


def fill_by_keyboard(page: Page, fields: dict[str, str]) -> None:
    """Tab from the top of the page to each field in turn and type into it."""
    for label, value in fields.items():
        tab_to(page, page.get_by_label(label, exact=True))
        page.keyboard.type(value)


def test_skip_link_moves_to_the_content(page):
    page.goto("/login")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert_focus_visible(page)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"#main$"))
    page.keyboard.press("Tab")
    # The next stop is inside the main content, not the header.
    assert page.evaluate("() => document.querySelector('main').contains(document.activeElement)")


def test_signup_by_keyboard(page):
    username = unique()
    page.goto("/signup")
    fill_by_keyboard(
        page,
        {
            "Username": username,
            "Email": f"{username}@example.com",
            "Password": PASSWORD,
            "Confirm password": PASSWORD,
        },
    )
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/account$"))


def test_login_with_remember_and_logout_by_keyboard(new_page):
    username = unique()
    signup(new_page(), username)
    page = new_page()
    page.goto("/login")
    fill_by_keyboard(page, {"Username or email": username, "Password": PASSWORD})
    remember = page.get_by_label("Remember this device", exact=True)
    tab_to(page, remember)
    page.keyboard.press("Space")
    expect(remember).to_be_checked()
    tab_to(page, page.get_by_role("button", name="Log in", exact=True))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/account$"))
    assert "remember" in {c["name"] for c in page.context.cookies()}

    page.keyboard.press("Tab")  # skip link first, then the header
    tab_to(page, page.get_by_role("button", name="Log out"))
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_change_password_by_keyboard(page):
    signup(page, unique())
    page.goto("/account/password")
    fill_by_keyboard(
        page,
        {
            "Current password": PASSWORD,
            "New password": NEW_PASSWORD,
            "Confirm new password": NEW_PASSWORD,
        },
    )
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Your password is changed.")


def test_confirm_password_by_keyboard(new_context):
    page = remembered_only(new_context, unique())
    page.goto("/account/delete")
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your password")
    fill_by_keyboard(page, {"Password": PASSWORD})
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete your account")


def test_device_revoke_and_rename_by_keyboard(new_page):
    username = unique()
    page = new_page()
    signup(page, username)
    login(new_page(), username)
    page.goto("/account/devices")
    name = page.locator(".device-current").get_by_label("Device name")
    tab_to(page, name)
    page.keyboard.type("Work laptop")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Device renamed.")
    expect(page.locator(".device-current .device-name")).to_contain_text("Work laptop")

    # Enter on Revoke opens the confirm dialog, which the test accepts.
    tab_to(page, page.get_by_role("button", name=re.compile(r"^Revoke")))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("That device is signed out.")
    expect(page.locator(".device")).to_have_count(1)


def test_new_browser_alerts_setting_by_keyboard(page):
    signup(page, unique())
    page.goto("/account/security")
    box = page.get_by_label("Email me when a new browser signs in", exact=True)
    expect(box).to_be_checked()
    tab_to(page, box)
    page.keyboard.press("Space")
    tab_to(page, page.get_by_role("button", name="Save", exact=True))
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text(
        "We will not email you when a new browser signs in."
    )
    expect(box).not_to_be_checked()


def test_delete_account_by_keyboard(page):
    signup(page, unique())
    page.goto("/account/delete")
    fill_by_keyboard(page, {"Password": PASSWORD})
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_have_text("Your account is deleted.")


def test_password_reset_by_keyboard(new_page, mailbox):
    username = unique()
    signup(new_page(), username)
    page = new_page()
    page.goto("/reset-password")
    fill_by_keyboard(page, {"Email": f"{username}@example.com"})
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")

    body = mailbox.to(f"{username}@example.com")[-1].get_body(preferencelist=("plain",))
    page.goto(RESET_LINK_RE.search(body.get_content()).group(0))
    fill_by_keyboard(page, {"New password": NEW_PASSWORD, "Confirm new password": NEW_PASSWORD})
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Your password is set.")


def test_admin_forms_by_keyboard(new_page, admin_account):
    username = unique()
    signup(new_page(), username)
    page = new_page()
    login(page, admin_account["username"], admin_account["password"])

    page.goto("/admin/users")
    fill_by_keyboard(page, {"Search": username})
    with page.expect_navigation():
        page.keyboard.press("Enter")
    link = page.get_by_role("link", name=username, exact=True)
    tab_to(page, link)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(username)

    role = page.get_by_label("Role", exact=True)
    tab_to(page, role)
    # A focused select takes the arrow keys; "admin" sorts before "user".
    page.keyboard.press("ArrowUp")
    expect(role.locator("option:checked")).to_have_text("admin")
    tab_to(page, page.get_by_role("button", name="Save role", exact=True))
    page.keyboard.press("Enter")
    expect(details(page, "Role")).to_have_text("admin")

    role_name = f"r{unique('')[1:].replace('-', '')}"
    page.goto("/admin/roles")
    fill_by_keyboard(page, {"Name": role_name, "Description": "Made from the keyboard"})
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_be_visible()
    page.goto("/admin/roles")
    expect(page.get_by_role("link", name=role_name, exact=True)).to_be_visible()


def test_email_change_and_its_link_by_keyboard(new_page, mailbox):
    username = unique()
    new = f"{username}@new.example.org"
    page = new_page()
    signup(page, username)
    page.goto("/account/email")
    fill_by_keyboard(page, {"New email": new})
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text(f"We sent a link to {new}.")

    body = mailbox.to(new)[-1].get_body(preferencelist=("plain",)).get_content()
    link = re.search(r"https?://\S+/verify-email/[A-Za-z0-9_-]+", body).group(0)
    other = new_page()
    other.goto(link)
    tab_to(other, other.get_by_role("button", name="Confirm email address", exact=True))
    other.keyboard.press("Enter")
    expect(other.get_by_role("status")).to_have_text("Your email address is confirmed.")
    page.goto("/account")
    expect(details(page, "Email")).to_have_text(new)
