"""Forms of the admin blueprint."""

from __future__ import annotations

from wtforms import (
    BooleanField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from webapp.domain.administration import (
    KNOWN_ACTIONS,
    SEARCH_MAX,
    AdminError,
    canonical_role_name,
)
from webapp.forms_common import Form, at_most
from webapp.i18n import _l


class SearchForm(Form):
    """The users list search: a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    q = StringField(
        _l("Search"),
        validators=[Length(max=SEARCH_MAX, message=at_most(SEARCH_MAX))],
        render_kw={"type": "search", "placeholder": _l("Username or email")},
    )
    unconfirmed = BooleanField(_l("Only unconfirmed email addresses"))


class AuditFilterForm(Form):
    """The audit log filters: a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    user = StringField(
        _l("User"),
        validators=[Length(max=50, message=at_most(50))],
        render_kw={"placeholder": _l("Exact username")},
    )
    action = SelectField(
        _l("Action"),
        choices=[
            SelectChoice("", _l("All actions")),
            *(SelectChoice(value, label) for value, label in KNOWN_ACTIONS.items()),
        ],
        default="",
        validate_choice=True,
    )


class ActionForm(Form):
    """A button that changes state: nothing but the CSRF token."""


class UserRoleForm(Form):
    role = SelectField(
        _l("Role"),
        coerce=int,
        validators=[InputRequired(message=_l("Choose a role."))],
    )
    submit = SubmitField(_l("Save role"))

    def __init__(self, *args, choices: list[tuple[int, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.role.choices = [SelectChoice(value, label) for value, label in choices]


class RevokeDeviceForm(Form):
    device_id = IntegerField(validators=[InputRequired(), NumberRange(min=1, max=2**31 - 1)])


class RoleForm(Form):
    """Create or edit a role."""

    name = StringField(
        _l("Name"),
        validators=[
            DataRequired(message=_l("Enter a name.")),
            Length(max=64, message=at_most(32)),
        ],
        render_kw={"autocomplete": "off", "maxlength": 32},
    )
    description = StringField(
        _l("Description"),
        validators=[Optional(), Length(max=255, message=at_most(255))],
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
        render_kw={"maxlength": 255},
    )
    mfa_required = BooleanField(_l("Require two-factor authentication"))
    submit = SubmitField(_l("Save"))

    canonical: str = ""

    def validate_name(self, field) -> None:
        try:
            self.canonical = canonical_role_name(field.data or "")
        except AdminError as exc:
            raise ValidationError(str(exc)) from None


class CreateRoleForm(RoleForm):
    submit = SubmitField(_l("Create role"))
