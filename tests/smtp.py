"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import asyncio
import email
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.policy import default

from aiosmtpd.controller import Controller

LINK_RE = re.compile(r"https?://\S+/reset-password/[A-Za-z0-9_.\-]+")


class Mailbox:
    """The SMTP handler: every delivered message, parsed.

    `refuse(n)` makes it answer the next n messages "451 try again later"
    (kept in `refused`), and `delay` makes it take that long over each one.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refused: list[EmailMessage] = []
        self.refusals = 0
        self.delay = 0.0
        self._lock = threading.Lock()

    def refuse(self, count: int) -> None:
        with self._lock:
            self.refusals = count

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content, policy=default)
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            if self.refusals:
                self.refusals -= 1
                self.refused.append(message)
                return "451 4.3.0 Try again later"
            self.messages.append(message)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        """Return the messages delivered to `address`."""
        with self._lock:
            return [m for m in self.messages if address in str(m["To"])]


def text_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def reset_link(message: EmailMessage) -> str:
    """Return the reset link of a mail, as its plain-text body shows it."""
    match = LINK_RE.search(text_of(message))
    assert match, "no reset link in the mail"
    return match.group(0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    """An SMTP server on one loopback port that can go down and come back on it."""

    def __init__(self) -> None:
        self.mailbox = Mailbox(free_port())
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.mailbox.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """Run an SMTP server on a free loopback port for the length of the block."""
    server = SmtpServer()
    server.start()
    try:
        yield server.mailbox
    finally:
        server.stop()
