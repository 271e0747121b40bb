"""/api/docs in a real browser: Swagger UI renders the OpenAPI document under our strict CSP."""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_the_api_docs_render_under_the_csp(page: Page):
    errors: list[str] = []
    # A CSP violation (an inline script or style, a CDN) is reported as a console error.
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: r.status >= 400 and errors.append(f"{r.status} {r.url}"))
    page.goto("/api/docs")
    expect(page.get_by_role("heading", name="Keystone token API")).to_be_visible()
    expect(page.get_by_text("/api/v1/auth/token", exact=True).first).to_be_visible()
    assert not errors, errors
