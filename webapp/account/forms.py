"""Forms of the account blueprint."""

from __future__ import annotations

from flask_login import current_user
from wtforms import BooleanField, HiddenField, SelectChoice, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, ValidationError

from webapp.forms_common import Form, at_most, code_field, email_field, password_field
from webapp.i18n import LANGUAGE_NAMES, _, _l, languages, valid_zone
from webapp.security.passwords import password_problems


class ActionForm(Form):
    """A button that changes state: nothing but the CSRF token."""


class ConfirmPasswordForm(Form):
    reauth_password = password_field(_l("Password"))
    submit = SubmitField(_l("Confirm"))


class ChangePasswordForm(Form):
    current_password = password_field(_l("Current password"))
    new_password = password_field(_l("New password"), autocomplete="new-password")
    confirm_new_password = password_field(_l("Confirm new password"), autocomplete="new-password")
    submit = SubmitField(_l("Change password"))

    def validate_new_password(self, field) -> None:
        problems = password_problems(
            field.data or "", username=current_user.username, email=current_user.email
        )
        if problems:
            raise ValidationError(" ".join(problems))

    def validate_confirm_new_password(self, field) -> None:
        if field.data != self.new_password.data:
            raise ValidationError(_("The two passwords do not match."))


class ChangeEmailForm(Form):
    new_email = email_field(_l("New email"))
    submit = SubmitField(_l("Change email"))


class DeleteAccountForm(Form):
    password = password_field(_l("Password"))
    submit = SubmitField(_l("Delete account"))


class RenameDeviceForm(Form):
    name = StringField(
        _l("Device name"),
        validators=[Length(max=60, message=at_most(60))],
    )
    submit = SubmitField(_l("Rename"))


class TotpSetupForm(Form):
    code = code_field(
        _l("Enter the 6-digit code your app shows."), inputmode="numeric", spellcheck="false"
    )
    sign_out_others = BooleanField(_l("Sign out all other devices"), default=True)
    submit = SubmitField(_l("Turn on"))


class NewBrowserAlertsForm(Form):
    new_browser_alerts = BooleanField(_l("Email me when a new browser signs in"))
    submit = SubmitField(_l("Save"))


PASSKEY_NAME_MAX = 60


class ConfirmWithPasskeyForm(Form):
    """ "Use a passkey" on the "Confirm your password" page: the browser's answer."""

    reauth_passkey = HiddenField()
    use_passkey = SubmitField(_l("Use a passkey"))


class AddPasskeyForm(Form):
    """ "Add a passkey": a name, and the browser's answer filled in by static/js/passkeys.js."""

    name = StringField(
        _l("Passkey name"),
        id="passkey_name",
        validators=[
            DataRequired(message=_l("Give the passkey a name, such as the device that holds it.")),
            Length(
                max=PASSKEY_NAME_MAX,
                message=at_most(PASSKEY_NAME_MAX),
            ),
        ],
        render_kw={"maxlength": PASSKEY_NAME_MAX, "autocomplete": "off", "data-passkey-name": ""},
    )
    credential = HiddenField()
    submit = SubmitField(_l("Add a passkey"))


class RenamePasskeyForm(Form):
    name = StringField(
        _l("New name"),
        validators=[
            DataRequired(message=_l("Give the passkey a name.")),
            Length(
                max=PASSKEY_NAME_MAX,
                message=at_most(PASSKEY_NAME_MAX),
            ),
        ],
    )
    submit = SubmitField(_l("Rename"))


class PreferencesForm(Form):
    """The language and time zone on /account (account/preferences.py writes the zone's options)."""

    language = SelectField(
        _l("Language"),
        choices=[SelectChoice(code, name) for code, name in LANGUAGE_NAMES.items()],
        validate_choice=False,
    )
    time_zone = StringField(_l("Time zone"))
    submit = SubmitField(_l("Save preferences"))

    def validate_language(self, field) -> None:
        if field.data not in languages():
            raise ValidationError(_l("Choose a language from the list."))

    def validate_time_zone(self, field) -> None:
        if not valid_zone(field.data):
            raise ValidationError(_l("Choose a time zone from the list."))
