"""Forms of the auth blueprint."""

from __future__ import annotations

from wtforms import BooleanField, HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, ValidationError

from webapp.forms_common import Form, code_field, email_field, password_field
from webapp.models import User
from webapp.security.identity import (
    EMAIL_MAX,
    USERNAME_MAX,
    IdentityError,
    canonical_username,
)
from webapp.security.passwords import password_problems


class SignupForm(Form):
    username = StringField(
        "Username",
        validators=[
            DataRequired(message="Choose a username."),
            Length(max=USERNAME_MAX, message=f"Use at most {USERNAME_MAX} characters."),
        ],
        render_kw={"autocomplete": "username"},
    )
    email = email_field()
    password = password_field("Password", autocomplete="new-password")
    confirm_password = password_field("Confirm password", autocomplete="new-password")
    submit = SubmitField("Sign up")

    def validate_username(self, field: StringField) -> None:
        try:
            field.canonical = canonical_username(field.data or "")
        except IdentityError as exc:
            raise ValidationError(str(exc)) from exc

    def validate_password(self, field) -> None:
        problems = password_problems(
            field.data or "",
            username=getattr(self.username, "canonical", self.username.data or ""),
            email=getattr(self.email, "canonical", self.email.data or ""),
        )
        if problems:
            raise ValidationError(" ".join(problems))

    def validate_confirm_password(self, field) -> None:
        if field.data != self.password.data:
            raise ValidationError("The two passwords do not match.")


class LoginForm(Form):
    identifier = StringField(
        "Username or email",
        validators=[
            DataRequired(message="Enter your username or email."),
            Length(max=EMAIL_MAX, message="That is too long for a username or email."),
        ],
        render_kw={"autocomplete": "username"},
    )
    password = password_field("Password")
    remember = BooleanField("Remember this device")
    next = HiddenField()
    submit = SubmitField("Log in")


class VerifyForm(Form):
    """The second step of a login: an authenticator code or a recovery code."""

    code = code_field(
        "Enter the code from your authenticator app.", spellcheck="false", autocapitalize="off"
    )
    submit = SubmitField("Verify")


class ResetRequestForm(Form):
    email = email_field()
    submit = SubmitField("Send reset link")


class ResetPasswordForm(Form):
    new_password = password_field("New password", autocomplete="new-password")
    confirm_new_password = password_field("Confirm new password", autocomplete="new-password")
    submit = SubmitField("Set password")

    def __init__(self, account: User, **kwargs) -> None:
        super().__init__(**kwargs)
        self.account = account

    def validate_new_password(self, field) -> None:
        problems = password_problems(
            field.data or "", username=self.account.username, email=self.account.email
        )
        if problems:
            raise ValidationError(" ".join(problems))

    def validate_confirm_new_password(self, field) -> None:
        if field.data != self.new_password.data:
            raise ValidationError("The two passwords do not match.")


class NotMeForm(Form):
    """The "This wasn't me" page: one button."""

    submit = SubmitField("Sign out that device")


class PasskeyLoginForm(Form):
    """ "Log in with a passkey": the browser's answer, filled in by static/js/passkeys.js,
    and the "Remember this device" choice copied from the login form."""

    credential = HiddenField()
    remember = HiddenField()
    next = HiddenField()
    submit = SubmitField("Log in with a passkey")


class PasskeyVerifyForm(Form):
    """ "Use a passkey" at the second step of a login: the browser's answer."""

    credential = HiddenField()
    use_passkey = SubmitField("Use a passkey")
