"""Password hashing (bcrypt) and the password policy."""

from __future__ import annotations

import functools

import bcrypt
from flask import current_app

from webapp.i18n import _

MIN_LENGTH = 8
MAX_LENGTH = 128
# bcrypt reads at most 72 bytes; longer passwords are refused rather than
# silently truncated (bcrypt 5 raises ValueError past 72 bytes).
MAX_BYTES = 72


def _rounds() -> int:
    return int(current_app.config["BCRYPT_ROUNDS"])


def hash_password(password: str) -> str:
    """Return a bcrypt hash of `password` at the configured cost."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(_rounds())).decode("ascii")


def check_password(password: str, password_hash: str) -> bool:
    """Return whether `password` matches `password_hash`, in constant time."""
    encoded = password.encode("utf-8")
    # bcrypt stops at a NUL byte, so "secret\0junk" would match "secret".
    if len(encoded) > MAX_BYTES or b"\0" in encoded:
        # Still spend one bcrypt check so timing does not reveal the cause.
        bcrypt.checkpw(b"x", _dummy_hash(_rounds()).encode("ascii"))
        return False
    try:
        matches = bcrypt.checkpw(encoded, password_hash.encode("ascii"))
    except ValueError:
        return False
    if not matches:
        _pad_to_current_cost(password_hash)
    return matches


def _pad_to_current_cost(password_hash: str) -> None:
    """After a failed check of a hash made at a lower cost, spend the rest of a full check.

    Hashes from before BCRYPT_ROUNDS was raised are rehashed at their next
    login; until then a wrong password for such an account would answer
    faster than one for an unknown name. bcrypt's work doubles with each
    cost step, and 2**c == 2**old + 2**old + 2**(old+1) + ... + 2**(c-1), so
    one dummy check at each cost from `old` to c-1 makes up the difference.
    """
    try:
        cost = int(password_hash.split("$")[2])
    except (IndexError, ValueError):
        return
    for rounds in range(max(cost, 4), _rounds()):
        bcrypt.checkpw(b"x", _dummy_hash(rounds).encode("ascii"))


def burn_password_check(password: str) -> None:
    """Spend the time of one real check, for identifiers that match no account."""
    check_password(password, _dummy_hash(_rounds()))


@functools.cache
def _dummy_hash(rounds: int) -> str:
    return bcrypt.hashpw(b"not-a-real-password", bcrypt.gensalt(rounds)).decode("ascii")


def needs_rehash(password_hash: str) -> bool:
    """Return whether the hash was made at another cost than the configured one."""
    try:
        return int(password_hash.split("$")[2]) != _rounds()
    except (IndexError, ValueError):
        return True


# zxcvbn's score: 0 (too guessable) to 4 (very unguessable); 3 is "safely
# unguessable" against an offline attack on a slow hash.
MIN_SCORE = 3
# Words of this site that people build passwords from.
SITE_WORDS = ("keystone",)


def password_problems(password: str, *, username: str = "", email: str = "") -> list[str]:
    """Return what is wrong with a new password, as messages for the form.

    Length: 8 characters to 72 bytes (bcrypt's limit). Strength: zxcvbn's
    full matching (dictionaries and common passwords with l33t and
    capitalised variants, keyboard patterns, dates, repeats, and the
    account's own username and email address) must score at least
    MIN_SCORE, as NIST SP 800-63B asks of common, breached and
    context-specific passwords; a refusal says why in zxcvbn's words.
    """
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(_("Use at least %(num)d characters.", num=MIN_LENGTH))
    elif len(password) > MAX_LENGTH:
        problems.append(_("Use at most %(num)d characters.", num=MAX_LENGTH))
    elif len(password.encode("utf-8")) > MAX_BYTES:
        problems.append(
            _(
                "This password is longer than %(num)d bytes (accented letters, "
                "symbols and emoji take several bytes each); please shorten it.",
                num=MAX_BYTES,
            )
        )
    if "\0" in password:
        problems.append(_("The password cannot contain a NUL character."))
    folded = password.casefold()
    if username and folded == username.casefold():
        problems.append(_("The password must not be your username."))
    if email and folded == email.casefold():
        problems.append(_("The password must not be your email address."))
    if not problems:
        problems.extend(strength_problems(password, username=username, email=email))
    return problems


def strength_problems(password: str, *, username: str = "", email: str = "") -> list[str]:
    """Return zxcvbn's reasons when the password is too easy to guess, else nothing."""
    from zxcvbn import zxcvbn

    own_words = [word for word in (username, email, *email.split("@")[:1]) if word]
    result = zxcvbn(password, user_inputs=[*own_words, *SITE_WORDS])
    if result["score"] >= MIN_SCORE:
        return []
    feedback = result["feedback"]
    reasons = [_(feedback["warning"])] if feedback.get("warning") else []
    reasons += [_(text) for text in feedback.get("suggestions", [])]
    return [_("This password is too easy to guess."), *reasons]
