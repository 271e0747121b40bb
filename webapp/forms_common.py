"""The base form and field helpers shared by the forms of every blueprint."""

from __future__ import annotations

from flask_babel.speaklater import LazyString
from flask_wtf import FlaskForm
from wtforms import Field, PasswordField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from webapp.i18n import _l
from webapp.security.identity import EMAIL_MAX, IdentityError, canonical_email
from webapp.security.speedups.csrf import FormCSRF
from webapp.security.two_factor import CODE_INPUT_MAX

# Generous input caps: anything longer is an error on the form, never a 500.
MAX_PASSWORD_INPUT = 1024
NUL_MESSAGE = _l("This field cannot contain a NUL character.")


class Form(FlaskForm):
    """Every form of the app.

    Text with a NUL character is refused before any validator runs: no field
    has a use for it, PostgreSQL cannot store it in text, and bcrypt stops
    reading at it.
    """

    class Meta:
        csrf_class = FormCSRF  # new tokens made faster; validated by Flask-WTF as ever

    def validate(self, extra_validators=None) -> bool:
        poisoned = [field for field in self if isinstance(field.data, str) and "\x00" in field.data]
        if poisoned:
            for field in poisoned:
                field.errors = [NUL_MESSAGE]
            return False
        return super().validate(extra_validators)


def at_most(limit: int) -> LazyString:
    """Return the message for text longer than `limit` characters."""
    return _l("Use at most %(num)d characters.", num=limit)


def password_field(
    label: str | LazyString, autocomplete: str = "current-password"
) -> PasswordField:
    """Return a required password field that refuses absurdly long input."""
    return PasswordField(
        label,
        validators=[
            DataRequired(message=_l("Enter a password.")),
            Length(max=MAX_PASSWORD_INPUT, message=_l("That is far too long for a password.")),
        ],
        render_kw={"autocomplete": autocomplete},
    )


def _valid_email(form: FlaskForm, field: Field) -> None:
    """Validate the address and keep its stored form in `field.canonical`."""
    try:
        field.canonical = canonical_email(field.data or "")
    except IdentityError as exc:
        raise ValidationError(str(exc)) from exc


def email_field(label: str | LazyString | None = None) -> StringField:
    """Return a required email field; a valid address is kept as `field.canonical`."""
    return StringField(
        _l("Email") if label is None else label,
        validators=[
            DataRequired(message=_l("Enter your email address.")),
            Length(max=EMAIL_MAX, message=at_most(EMAIL_MAX)),
            _valid_email,
        ],
        render_kw={"autocomplete": "email", "type": "email"},
    )


def code_field(required_message: str | LazyString, **attributes: str) -> StringField:
    """Return the "Authentication code" field: a one-time-code input, capped in length.

    `attributes` are the input's other HTML attributes, in the order written.
    """
    return StringField(
        _l("Authentication code"),
        validators=[
            DataRequired(message=required_message),
            Length(max=CODE_INPUT_MAX, message=_l("That is far too long for a code.")),
        ],
        render_kw={"autocomplete": "one-time-code", **attributes, "maxlength": CODE_INPUT_MAX},
    )
