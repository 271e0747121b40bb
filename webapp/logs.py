"""Logging set-up: one line per event, user text escaped."""

from __future__ import annotations

import json
import logging

from flask import Flask


def safe(text: object) -> str:
    """Escape control characters so user text cannot forge a log line."""
    value = str(text)
    return value.encode("unicode_escape").decode("ascii") if not value.isprintable() else value


def quoted(value: object) -> str:
    """Return a log field value in double quotes, with quotes and control characters escaped.

    Values are quoted so text such as `x ip=10.0.0.1 actor=admin` reads as
    one value to a key=value parser, never as extra fields.
    """
    return json.dumps(str(value), ensure_ascii=True)


class OneLineFormatter(logging.Formatter):
    """Escape newlines and other control characters in the message itself."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802
        record.message = safe(record.message)
        return super().formatMessage(record)


def configure_logging(app: Flask) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("webapp")
    if not any(isinstance(h.formatter, OneLineFormatter) for h in root.handlers):
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = app.config["ENV_NAME"] == "testing"
