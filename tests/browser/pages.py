"""Walking the app's forms in a browser, shared by the browser tests and `make screenshots`."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pyotp
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


def login(
    page: Page,
    identifier: str,
    password: str = PASSWORD,
    remember: bool = False,
    totp: str | None = None,
    lands: str = r"/account$",
) -> None:
    """Log in through the form and land on the account page.

    With `totp` (an authenticator secret), or for an account whose secret
    was kept with `keep_secret`, type its code at the second step, as the
    person would read it off their phone.
    """
    totp = totp or SECRETS.get(identifier)
    page.goto("/login")
    page.get_by_label("Username or email", exact=True).fill(identifier)
    page.get_by_label("Password", exact=True).fill(password)
    if remember:
        page.get_by_label("Remember this device", exact=True).check()
    page.get_by_role("button", name="Log in", exact=True).click()
    if totp:
        expect(page).to_have_url(re.compile(r"/login/verify$"))
        page.get_by_label("Authentication code", exact=True).fill(totp_code(totp))
        page.get_by_role("button", name="Verify", exact=True).click()
    expect(page).to_have_url(re.compile(lands))


# Authenticator secrets by username, as their owners' phones hold them.
SECRETS: dict[str, str] = {}


def keep_secret(identifier: str, secret: str) -> None:
    """Let `login` type codes of `secret` for `identifier` from now on."""
    SECRETS[identifier] = secret


# The last step each secret's code was typed for: a code works once, so the
# next login waits for a later one, as a person would wait for their app.
_LAST_STEP: dict[str, int] = {}


def totp_code(secret: str) -> str:
    """Return a code of `secret` for a step not typed before in this run."""
    now = int(time.time() // 30)
    step = max(now, _LAST_STEP.get(secret, now - 1) + 1)
    if step > now + 1:  # beyond the one step of drift allowed: wait for the clock
        time.sleep(max(0.0, (step - 1) * 30 + 0.5 - time.time()))
    _LAST_STEP[secret] = step
    return pyotp.TOTP(secret).at(step * 30)


def set_up_authenticator(page: Page, sign_out_others: bool = True) -> tuple[str, list[str]]:
    """Turn the authenticator app on from the security page; return its secret
    (read off the page, as from a phone's screen) and the recovery codes shown."""
    page.goto("/account/security")
    page.get_by_role("button", name="Set up authenticator app", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Set up an authenticator app")
    secret = "".join(page.locator("#setup-key").inner_text().split())
    page.get_by_label("Authentication code", exact=True).fill(totp_code(secret))
    if not sign_out_others:
        page.get_by_label("Sign out all other devices", exact=True).uncheck()
    page.get_by_role("button", name="Turn on", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Your recovery codes")
    codes = page.locator("ul.recovery-codes li").all_inner_texts()
    return secret, [code.strip() for code in codes]


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
