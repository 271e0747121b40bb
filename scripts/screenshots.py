"""Take pictures of the main pages at desktop and phone widths into docs/screenshots/.

Usage: `make screenshots` (or `.venv/bin/python scripts/screenshots.py [OUT_DIR]
[--german-only]`). German pictures (login and devices at phone width) come last.
Starts the app under gunicorn on a throwaway SQLite database (the same way the
browser tests do), fills it through the browser like a few real people would,
and saves one viewport-sized PNG per page and width.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright  # noqa: E402

from tests.browser.pages import keep_secret, login, set_up_authenticator  # noqa: E402
from tests.browser.pages import signup as walk_signup  # noqa: E402
from tests.browser.server import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    LiveServer,
    Mailbox,
    live_server,
    smtp_server,
)

ADMIN = ("ada", "ada@keystone.example", "Adm1n-keeps-the-keys")
PEOPLE = ["grace", "linus", "margaret", "ken", "barbara", "dennis", "radia", "tim"]
WIDTHS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
BROWSERS = {
    "mac": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "198.51.100.23",
    ),
    "windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "203.0.113.54",
    ),
    "iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        "192.0.2.181",
    ),
    # A public address (MaxMind's documented test address, in the UK), so the
    # activity page and the new-sign-in mail show a country.
    "hotel": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "81.2.69.160",
    ),
    "android": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        "198.51.100.7",
    ),
}


def context(browser: Browser, server: LiveServer, kind: str = "mac", **options) -> BrowserContext:
    """A browser of some kind, coming from its own (documentation-range) address."""
    agent, address = BROWSERS[kind]
    made = browser.new_context(
        base_url=server.url,
        user_agent=agent,
        extra_http_headers={"X-Forwarded-For": address},
        device_scale_factor=1,
        **options,
    )
    made.on("page", lambda page: page.on("dialog", lambda dialog: dialog.accept()))
    return made


def signup(page: Page, username: str) -> None:
    walk_signup(page, username, domain="keystone.example")


def seed(browser: Browser, server: LiveServer) -> tuple[dict, dict]:
    """Fill the app like a small team would; return the cookies of grace and of the admin."""
    server.create_admin(*ADMIN)
    for name in PEOPLE:
        with context(browser, server, "windows") as made:
            page = made.new_page()
            signup(page, name)
            page.get_by_role("button", name="Log out").click()
    # grace signs in from her phone, her tablet and a remembered work laptop.
    for kind, remember in (("iphone", False), ("android", False), ("windows", True)):
        with context(browser, server, kind) as made:
            login(made.new_page(), "grace", remember=remember)
    grace = context(browser, server, "mac")
    page = grace.new_page()
    login(page, "grace", remember=True)
    page.goto("/account/devices")
    laptop = page.locator(".device", has_text="Firefox on Windows")
    laptop.get_by_label("Device name").fill("Work laptop")
    laptop.get_by_role("button", name="Rename").click()
    # grace moves to a new address: the account page shows it waiting.
    page.goto("/account/email")
    page.get_by_label("New email", exact=True).fill("grace.hopper@keystone.example")
    page.get_by_role("button", name="Change email", exact=True).click()
    # Someone else tries grace's account, then signs in from a browser she never
    # used (before she adds a passkey, which would then be asked for).
    with context(browser, server, "hotel") as made:
        hotel = made.new_page()
        hotel.goto("/login")
        hotel.get_by_label("Username or email", exact=True).fill("grace")
        hotel.get_by_label("Password", exact=True).fill("grace1234")
        hotel.get_by_role("button", name="Log in", exact=True).click()
        login(hotel, "grace")
    add_passkey(page, "MacBook Touch ID")
    grace_state = grace.storage_state()
    grace.close()

    with context(browser, server, "iphone") as made:
        page = made.new_page()
        page.goto("/login")
        page.get_by_label("Username or email", exact=True).fill("dennis")
        page.get_by_label("Password", exact=True).fill("hunter2-wrong")
        page.get_by_role("button", name="Log in", exact=True).click()

    admin = context(browser, server, "mac")
    page = admin.new_page()
    # The admin role requires two-factor: the first sign-in sets up the app.
    login(page, ADMIN[0], ADMIN[2], lands=r"/account/security$")
    secret, _ = set_up_authenticator(page)
    keep_secret(ADMIN[0], secret)
    page.goto("/admin/roles")
    page.get_by_label("Name", exact=True).fill("support")
    page.get_by_label("Description", exact=True).fill("Answers tickets; can read the audit log")
    page.get_by_role("button", name="Create role", exact=True).click()
    for name, role in (("linus", "support"), ("margaret", "admin")):
        page.goto("/admin/users")
        page.get_by_role("link", name=name, exact=True).click()
        page.get_by_label("Role", exact=True).select_option(role)
        page.get_by_role("button", name="Save role", exact=True).click()
    page.goto("/admin/users")
    page.get_by_role("link", name="tim", exact=True).click()
    page.get_by_role("button", name="Deactivate", exact=True).click()
    expect(page.get_by_role("button", name="Activate", exact=True)).to_be_visible()
    admin_state = admin.storage_state()
    admin.close()
    return grace_state, admin_state


def add_passkey(page: Page, name: str) -> None:
    """Add a passkey through Chromium's virtual platform authenticator."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    page.goto("/account/security")
    page.get_by_label("Passkey name", exact=True).fill(name)
    page.get_by_role("button", name="Add a passkey", exact=True).click()
    expect(page.locator(".passkey-name", has_text=name)).to_be_visible()


def signup_errors(page: Page) -> None:
    page.get_by_label("Username", exact=True).fill("grace")
    page.get_by_label("Email", exact=True).fill("grace@")
    page.get_by_label("Password", exact=True).fill("hunter2")
    page.get_by_label("Confirm password", exact=True).fill("hunter3")
    page.get_by_role("button", name="Sign up", exact=True).click()
    page.locator(".field-error").first.wait_for()


def link_to(mailbox: Mailbox, address: str, path: str) -> str:
    """Return the path of the newest link to `path` mailed to `address`."""
    pattern = re.compile(rf"https?://[^/\s]+({re.escape(path)}[A-Za-z0-9_-]+)")
    for message in reversed(mailbox.to(address)):
        found = pattern.search(message.get_body(preferencelist=("plain",)).get_content())
        if found:
            return found.group(1)
    raise LookupError(f"no link to {path} mailed to {address}")


def password_step(page: Page) -> None:
    """Send the admin's password: the login's second step asks for the app's code."""
    page.get_by_label("Username or email", exact=True).fill(ADMIN[0])
    page.get_by_label("Password", exact=True).fill(ADMIN[2])
    page.get_by_role("button", name="Log in", exact=True).click()
    page.get_by_label("Authentication code", exact=True).wait_for()


# name -> (whose cookies, path, what to do before the picture)
PAGES = {
    "landing": (None, "/", None),
    "signup-errors": (None, "/signup", signup_errors),
    "login": (None, "/login", None),
    "reset-password": (None, "/reset-password", None),
    "account": ("grace", "/account", None),
    "devices": ("grace", "/account/devices", None),
    "change-email": ("grace", "/account/email", None),
    "confirm-email": (None, "{confirm}", None),
    "cancel-email-change": (None, "{cancel}", None),
    "security": ("admin", "/account/security", None),
    "totp-setup": ("grace", "/account/security/totp", None),
    "login-verify": (None, "/login", password_step),
    "activity": ("grace", "/account/activity", None),
    "security-passkeys": ("grace", "/account/security", None),
    "admin-users": ("admin", "/admin/users", None),
    "admin-roles": ("admin", "/admin/roles", None),
    "admin-audit": ("admin", "/admin/audit", None),
}


def mail_pictures(browser: Browser, mailbox: Mailbox, out_dir: Path) -> None:
    """Picture the HTML of the last new-sign-in mail grace received (from the hotel)."""
    alert = [
        m
        for m in mailbox.to("grace@keystone.example")
        if m["Subject"] == "New sign-in to your Keystone account"
    ][-1]
    html = alert.get_body(preferencelist=("html",)).get_content()
    for width_name, viewport in WIDTHS.items():
        made = browser.new_context(viewport=viewport, device_scale_factor=1)
        page = made.new_page()
        page.set_content(html)
        target = out_dir / f"new-sign-in-mail-{width_name}.png"
        page.screenshot(path=str(target), animations="disabled")
        made.close()
        print(f"wrote {target}")


def german_pictures(browser: Browser, server: LiveServer, grace: dict, out_dir: Path) -> None:
    """The login page and grace's device page in German, at phone width (long words)."""
    phone = WIDTHS["phone"]
    with context(browser, server, "mac", viewport=phone, locale="de-DE") as made:
        page = made.new_page()
        page.goto("/login")
        target = out_dir / "login-de-phone.png"
        page.screenshot(path=str(target), animations="disabled")
        print(f"wrote {target}")
    with context(browser, server, "mac", viewport=phone, storage_state=grace) as made:
        page = made.new_page()
        page.goto("/account")
        page.get_by_label("Language", exact=True).select_option("de")
        page.get_by_label("Time zone", exact=True).select_option("Europe/Berlin")
        page.get_by_role("button", name="Save preferences", exact=True).click()
        page.goto("/account/devices")
        target = out_dir / "devices-de-phone.png"
        page.screenshot(path=str(target), animations="disabled")
        print(f"wrote {target}")


def main(out_dir: Path, german_only: bool = False) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as tmp,
        smtp_server() as (mailbox, smtp_port),
        live_server(Path(tmp), smtp_port, extra_env={"TRUSTED_PROXIES": "1"}) as server,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        states = dict(zip(("grace", "admin"), seed(browser, server), strict=True))
        links = {
            "confirm": link_to(mailbox, "grace.hopper@keystone.example", "/verify-email/"),
            "cancel": link_to(mailbox, "grace@keystone.example", "/account/email/cancel/"),
        }
        for width_name, viewport in {} if german_only else WIDTHS.items():
            for name, (who, path, act) in PAGES.items():
                options = {"viewport": viewport}
                if who:
                    options["storage_state"] = states[who]
                with context(browser, server, "mac", **options) as made:
                    page = made.new_page()
                    page.goto(path.format(**links))
                    if act:
                        act(page)
                    target = out_dir / f"{name}-{width_name}.png"
                    page.screenshot(path=str(target), animations="disabled")
                    print(f"wrote {target}")
        if not german_only:
            mail_pictures(browser, mailbox, out_dir)
        # Last: grace then reads German.
        german_pictures(browser, server, states["grace"], out_dir)
        browser.close()


if __name__ == "__main__":
    arguments = [argument for argument in sys.argv[1:] if argument != "--german-only"]
    main(
        Path(arguments[0]) if arguments else ROOT / "docs" / "screenshots",
        german_only="--german-only" in sys.argv[1:],
    )
