"""Forms of the auth blueprint."""

from __future__ import annotations

from wtforms import BooleanField, HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, ValidationError

from webapp.forms_common import Form, at_most, code_field, email_field, password_field
from webapp.i18n import DEFAULT_ZONE, _, _l, valid_zone
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
        _l("Username"),
        validators=[
            DataRequired(message=_l("Choose a username.")),
            Length(max=USERNAME_MAX, message=at_most(USERNAME_MAX)),
        ],
        render_kw={"autocomplete": "username"},
    )
    email = email_field()
    password = password_field(_l("Password"), autocomplete="new-password")
    confirm_password = password_field(_l("Confirm password"), autocomplete="new-password")
    # The browser's IANA zone, filled in by static/js/app.js; UTC without script.
    time_zone = HiddenField(default=DEFAULT_ZONE)
    submit = SubmitField(_l("Sign up"))

    def reported_zone(self) -> str:
        """Return the zone the browser reported, or UTC for none or one we do not offer."""
        return valid_zone(self.time_zone.data) or DEFAULT_ZONE

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
            raise ValidationError(_("The two passwords do not match."))


class LoginForm(Form):
    identifier = StringField(
        _l("Username or email"),
        validators=[
            DataRequired(message=_l("Enter your username or email.")),
            Length(max=EMAIL_MAX, message=_l("That is too long for a username or email.")),
        ],
        render_kw={"autocomplete": "username"},
    )
    password = password_field(_l("Password"))
    remember = BooleanField(_l("Remember this device"))
    next = HiddenField()
    submit = SubmitField(_l("Log in"))


class VerifyForm(Form):
    """The second step of a login: an authenticator code or a recovery code."""

    code = code_field(
        _l("Enter the code from your authenticator app."), spellcheck="false", autocapitalize="off"
    )
    submit = SubmitField(_l("Verify"))


class ResetRequestForm(Form):
    email = email_field()
    submit = SubmitField(_l("Send reset link"))


class ResetPasswordForm(Form):
    new_password = password_field(_l("New password"), autocomplete="new-password")
    confirm_new_password = password_field(_l("Confirm new password"), autocomplete="new-password")
    submit = SubmitField(_l("Set password"))

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
            raise ValidationError(_("The two passwords do not match."))


class NotMeForm(Form):
    """The "This wasn't me" page: one button."""

    submit = SubmitField(_l("Sign out that device"))


class PasskeyLoginForm(Form):
    """ "Log in with a passkey": the browser's answer, filled in by static/js/passkeys.js,
    and the "Remember this device" choice copied from the login form."""

    credential = HiddenField()
    remember = HiddenField()
    next = HiddenField()
    submit = SubmitField(_l("Log in with a passkey"))


class PasskeyVerifyForm(Form):
    """ "Use a passkey" at the second step of a login: the browser's answer."""

    credential = HiddenField()
    use_passkey = SubmitField(_l("Use a passkey"))
