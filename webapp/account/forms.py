"""Forms of the account blueprint."""

from __future__ import annotations

from flask_login import current_user
from wtforms import BooleanField, HiddenField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, ValidationError

from webapp.forms_common import Form, code_field, email_field, password_field
from webapp.security.passwords import password_problems


class ActionForm(Form):
    """A button that changes state: nothing but the CSRF token."""


class ConfirmPasswordForm(Form):
    reauth_password = password_field("Password")
    submit = SubmitField("Confirm")


class ChangePasswordForm(Form):
    current_password = password_field("Current password")
    new_password = password_field("New password", autocomplete="new-password")
    confirm_new_password = password_field("Confirm new password", autocomplete="new-password")
    submit = SubmitField("Change password")

    def validate_new_password(self, field) -> None:
        problems = password_problems(
            field.data or "", username=current_user.username, email=current_user.email
        )
        if problems:
            raise ValidationError(" ".join(problems))

    def validate_confirm_new_password(self, field) -> None:
        if field.data != self.new_password.data:
            raise ValidationError("The two passwords do not match.")


class ChangeEmailForm(Form):
    new_email = email_field("New email")
    submit = SubmitField("Change email")


class DeleteAccountForm(Form):
    password = password_field("Password")
    submit = SubmitField("Delete account")


class RenameDeviceForm(Form):
    name = StringField(
        "Device name",
        validators=[Length(max=60, message="Use at most 60 characters.")],
    )
    submit = SubmitField("Rename")


class TotpSetupForm(Form):
    code = code_field(
        "Enter the 6-digit code your app shows.", inputmode="numeric", spellcheck="false"
    )
    sign_out_others = BooleanField("Sign out all other devices", default=True)
    submit = SubmitField("Turn on")


class NewBrowserAlertsForm(Form):
    new_browser_alerts = BooleanField("Email me when a new browser signs in")
    submit = SubmitField("Save")


PASSKEY_NAME_MAX = 60


class ConfirmWithPasskeyForm(Form):
    """ "Use a passkey" on the "Confirm your password" page: the browser's answer."""

    reauth_passkey = HiddenField()
    use_passkey = SubmitField("Use a passkey")


class AddPasskeyForm(Form):
    """ "Add a passkey": a name, and the browser's answer filled in by static/js/passkeys.js."""

    name = StringField(
        "Passkey name",
        id="passkey_name",
        validators=[
            DataRequired(message="Give the passkey a name, such as the device that holds it."),
            Length(max=PASSKEY_NAME_MAX, message=f"Use at most {PASSKEY_NAME_MAX} characters."),
        ],
        render_kw={"maxlength": PASSKEY_NAME_MAX, "autocomplete": "off", "data-passkey-name": ""},
    )
    credential = HiddenField()
    submit = SubmitField("Add a passkey")


class RenamePasskeyForm(Form):
    name = StringField(
        "New name",
        validators=[
            DataRequired(message="Give the passkey a name."),
            Length(max=PASSKEY_NAME_MAX, message=f"Use at most {PASSKEY_NAME_MAX} characters."),
        ],
    )
    submit = SubmitField("Rename")
