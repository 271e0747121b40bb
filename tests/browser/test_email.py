"""Email addresses in Chromium: the mailed link confirms, the change and its cancel link, and
the pages of EMAIL_VERIFICATION=mandatory; axe checks every new page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PASSWORD, TIMEOUT_MS, signup, unique
from tests.browser.server import LiveServer, Mailbox, live_server
from tests.browser.test_accessibility import audit, visit
from tests.browser.test_flows import details

VERIFY_RE = re.compile(r"https?://\S+/verify-email/[A-Za-z0-9_\-]+")
CANCEL_RE = re.compile(r"https?://\S+/account/email/cancel/[A-Za-z0-9_\-]+")


def link_in(mailbox: Mailbox, address: str, pattern: re.Pattern = VERIFY_RE) -> str:
    """Return the link of the newest mail to `address`, as its plain-text part shows it."""
    messages = mailbox.to(address)
    assert messages, f"no mail to {address}"
    text = messages[-1].get_body(preferencelist=("plain",)).get_content()
    match = pattern.search(text)
    assert match, f"no link in {messages[-1]['Subject']!r}"
    return match.group(0)


def test_signup_then_the_mailed_link_confirms_the_address(page, mailbox):
    username = unique()
    signup(page, username)
    expect(details(page, "Address status")).to_have_text("Not confirmed")
    audit(page)

    page.goto(link_in(mailbox, f"{username}@example.com"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
    audit(page)
    page.get_by_role("button", name="Confirm email address", exact=True).click()

    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("status")).to_have_text("Your email address is confirmed.")
    expect(details(page, "Address status")).to_have_text("Confirmed")
    expect(page.get_by_role("button", name="Send confirmation email")).to_have_count(0)


def test_a_used_link_shows_the_invalid_page(page):
    visit(page, "/verify-email/not-a-token", None)
    expect(page.get_by_role("heading", level=1)).to_have_text("This link does not work")
    visit(page, "/account/email/cancel/not-a-token", None)
    expect(page.get_by_text("This link is invalid or has expired.")).to_be_visible()


def test_email_change_confirm_and_cancel(new_page, mailbox):
    username = unique()
    old, new = f"{username}@example.com", f"{username}@new.example.org"
    page = new_page()
    signup(page, username)

    visit(page, "/account/email", None)
    page.get_by_role("button", name="Change email", exact=True).click()
    expect(page.get_by_label("New email", exact=True)).to_have_attribute("aria-invalid", "true")
    audit(page)
    page.get_by_label("New email", exact=True).fill(new)
    page.get_by_role("button", name="Change email", exact=True).click()
    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_text(f"Changing to {new}")).to_be_visible()
    audit(page)

    elsewhere = new_page()
    elsewhere.goto(link_in(mailbox, new))
    expect(elsewhere.get_by_text(new)).to_be_visible()
    elsewhere.get_by_role("button", name="Confirm email address", exact=True).click()
    expect(elsewhere).to_have_url(re.compile(r"/login$"))
    page.goto("/account")
    expect(details(page, "Email")).to_have_text(new)
    expect(details(page, "Address status")).to_have_text("Confirmed")

    owner = new_page()
    visit(owner, link_in(mailbox, old, CANCEL_RE), None)
    expect(owner.get_by_role("heading", level=1)).to_have_text("Cancel the email change")
    owner.get_by_role("button", name="Cancel the change", exact=True).click()
    expect(owner).to_have_url(re.compile(r"/reset-password$"))
    expect(owner.get_by_role("status")).to_contain_text("The change is cancelled")
    audit(owner)

    page.goto("/account")
    expect(page).to_have_url(re.compile(r"/login"))


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory, smtp) -> Iterator[LiveServer]:
    """A second server, with EMAIL_VERIFICATION=mandatory, on a database of its own."""
    with live_server(
        tmp_path_factory.mktemp("strict"),
        smtp_port=smtp[1],
        extra_env={"EMAIL_VERIFICATION": "mandatory"},
        database="strict",
    ) as running:
        yield running


@pytest.fixture
def strict_page(browser: Browser, strict_server) -> Iterator[Page]:
    context = browser.new_context(base_url=strict_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def test_mandatory_signup_and_login_pages(strict_page, mailbox):
    page = strict_page
    username = unique()
    page.goto("/signup")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Email", exact=True).fill(f"{username}@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign up", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Check your email")
    audit(page)

    page.goto("/login")
    page.get_by_label("Username or email", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Confirm your email address")
    audit(page)
    page.get_by_role("button", name="Send confirmation email", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login$"))
    # "Sent", or "less than 2 minutes ago" when the same gunicorn worker counted
    # the signup's mail (memory:// counts per process; production shares Redis).
    expect(page.locator(".flash")).to_contain_text(re.compile("sent|2 minutes"))
    audit(page)

    page.goto(link_in(mailbox, f"{username}@example.com"))
    page.get_by_role("button", name="Confirm email address", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Your email address is confirmed.")
    page.get_by_label("Username or email", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/account$"))
