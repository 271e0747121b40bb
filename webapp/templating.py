"""Template filters and globals shared by every page."""

from __future__ import annotations

from datetime import datetime

from flask import Flask


def format_datetime(value: datetime | None) -> str:
    """Render a timestamp readably, in UTC: "27 Nov 2026, 14:05 UTC"."""
    if value is None:
        return "—"
    return value.strftime("%-d %b %Y, %H:%M UTC")


def format_date(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.strftime("%-d %B %Y")


def init_app(app: Flask) -> None:
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(format_date, "date")
