"""Fixtures for the browser tests: one live server and one Chromium per session.

Each test opens its own browser contexts (own cookies, like separate
browsers). The database is shared by every test of the session, so each test
makes users with names of its own (`unique`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.browser.pages import (  # noqa: F401 - the tests import them here
    PASSWORD,
    keep_secret,
    login,
    set_up_authenticator,
    signup,
    totp_code,
)
from tests.browser.server import CHROMIUM, CHROMIUM_ARGS, LiveServer, Mailbox, live_server
from tests.browser.server import smtp_server as run_smtp_server

NEW_PASSWORD = "correct horse battery staple"
ADMIN_PASSWORD = "Adm1n-keeps-the-keys"
TIMEOUT_MS = 15_000


def unique(prefix: str = "user") -> str:
    """Return a username no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with run_smtp_server() as running:
        yield running


@pytest.fixture(scope="session")
def mailbox(smtp) -> Mailbox:
    return smtp[0]


@pytest.fixture(scope="session")
def server(tmp_path_factory, smtp) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("browser"), smtp_port=smtp[1]) as running:
        yield running


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def new_context(browser, server) -> Iterator[Callable[..., BrowserContext]]:
    """Make a browser context (a separate browser, cookie-wise) on the live server."""
    contexts: list[BrowserContext] = []

    def make(**options) -> BrowserContext:
        context = browser.new_context(base_url=server.url, **options)
        context.set_default_timeout(TIMEOUT_MS)
        # Destructive buttons ask window.confirm (static/js/app.js): say yes.
        context.on("page", lambda page: page.on("dialog", lambda dialog: dialog.accept()))
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def new_page(new_context) -> Callable[..., Page]:
    """Open a page in a new context of its own."""

    def make(**options) -> Page:
        return new_context(**options).new_page()

    return make


@pytest.fixture
def page(new_page) -> Page:
    return new_page()


@pytest.fixture(scope="session")
def admin_account(server, browser) -> dict[str, str]:
    """An admin made with `flask create-admin`, as an operator would, who set up
    the authenticator app at the first sign-in, as the admin role requires.

    `login` types the app's codes for it; `totp` is the secret.
    """
    username = unique("admin")
    account = {"username": username, "email": f"{username}@example.com"}
    server.create_admin(account["username"], account["email"], ADMIN_PASSWORD)
    context = browser.new_context(base_url=server.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    login(page, username, ADMIN_PASSWORD, lands=r"/account/security$")
    secret, codes = set_up_authenticator(page)
    keep_secret(username, secret)
    context.close()
    return {**account, "password": ADMIN_PASSWORD, "totp": secret, "recovery": codes}


def expect_signed_out(page: Page, path: str = "/account") -> None:
    """Navigate to a signed-in page and see the login form instead."""
    page.goto(path)
    expect(page).to_have_url(re.compile(r"/login(\?|$)"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Log in")
