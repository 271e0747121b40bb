"""Walking the app's forms in a browser, shared by the browser tests and `make screenshots`."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

PASSWORD = "Tr0ub4dor&3-horse"


def signup(
    page: Page, username: str, password: str = PASSWORD, domain: str = "example.com"
) -> None:
    """Sign up through the form and land on the account page."""
    page.goto("/signup")
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Email", exact=True).fill(f"{username}@{domain}")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Confirm password", exact=True).fill(password)
    page.get_by_role("button", name="Sign up", exact=True).click()
    expect(page).to_have_url(re.compile(r"/account$"))


def login(page: Page, identifier: str, password: str = PASSWORD, remember: bool = False) -> None:
    """Log in through the form and land on the account page."""
    page.goto("/login")
    page.get_by_label("Username or email", exact=True).fill(identifier)
    page.get_by_label("Password", exact=True).fill(password)
    if remember:
        page.get_by_label("Remember this device", exact=True).check()
    page.get_by_role("button", name="Log in", exact=True).click()
    expect(page).to_have_url(re.compile(r"/account$"))


def remembered_only(new_context: Callable[..., BrowserContext], username: str) -> Page:
    """Sign up `username`, log in with "Remember this device", and return a page
    in a new context holding only the remember cookie: signed in, not fresh."""
    first = new_context()
    signup(first.new_page(), username)
    first.clear_cookies()
    login(first.new_page(), username, remember=True)
    restored = new_context()
    restored.add_cookies([c for c in first.cookies() if c["name"] != "session"])
    return restored.new_page()
