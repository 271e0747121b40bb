"""Canonical forms of usernames and emails, so uniqueness ignores case."""

from __future__ import annotations

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

from webapp.i18n import _

USERNAME_MIN = 3
USERNAME_MAX = 50
EMAIL_MAX = 255
_USERNAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")


class IdentityError(ValueError):
    """The text cannot be a username or email address; the message says why."""


def canonical_username(raw: str) -> str:
    """Return the stored form of a username: NFKC, case-folded, ASCII only.

    NFKC folds compatibility forms (fullwidth "ａｄｍｉｎ" becomes "admin") and
    the ASCII alphabet rules out lookalikes from other scripts, so two
    accounts can never look the same.
    """
    name = unicodedata.normalize("NFKC", raw).strip().casefold()
    if not USERNAME_MIN <= len(name) <= USERNAME_MAX:
        raise IdentityError(
            _("Use %(min)d to %(max)d characters.", min=USERNAME_MIN, max=USERNAME_MAX)
        )
    if not _USERNAME_RE.match(name):
        raise IdentityError(
            _(
                "Use only letters a–z, digits, dots, dashes and underscores, "
                "starting and ending with a letter or digit."
            )
        )
    return name


def canonical_email(raw: str) -> str:
    """Return the stored form of an email address: validated and lower-cased."""
    text = raw.strip()
    if len(text) > EMAIL_MAX:
        raise IdentityError(_("Use at most %(num)d characters.", num=EMAIL_MAX))
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        # email-validator's own message is English and technical; ours is translated.
        raise IdentityError(_("Enter a valid email address.")) from exc
    normalized = result.normalized.lower()
    if len(normalized) > EMAIL_MAX:
        raise IdentityError(_("Use at most %(num)d characters.", num=EMAIL_MAX))
    return normalized


def canonical_identifier(raw: str) -> str:
    """Return the form of a login identifier (username or email) to look up."""
    text = unicodedata.normalize("NFKC", raw).strip().casefold()
    return text[: EMAIL_MAX + 1]


def lookup_key(raw: str) -> str:
    """Return the canonical form a login identifier is looked up by.

    An email is canonicalised as stored (IDNA folds variation selectors and
    ideographic full stops in the domain); anything else as a username.
    """
    key = canonical_identifier(raw)
    if "@" in key:
        try:
            return canonical_email(raw)
        except IdentityError:
            pass
    return key
