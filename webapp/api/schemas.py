"""The token API's request and response schemas (marshmallow).

The request schemas validate the JSON bodies (through flask-smorest and
webargs) and the OpenAPI document is generated from these same classes,
so the document cannot drift from what the API accepts. Field rules are
the pages' own: `canonical_username`, `canonical_email` and
`password_problems` from the mechanism.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from webapp.i18n import _
from webapp.security.identity import (
    EMAIL_MAX,
    USERNAME_MAX,
    IdentityError,
    canonical_email,
    canonical_username,
)
from webapp.security.passwords import password_problems

DEVICE_NAME_MAX = 60
PASSWORD_MAX = 1024  # longer is refused by the policy anyway; no bcrypt on megabytes
CODE_MAX = 64


def _required(**kwargs) -> fields.String:
    return fields.String(required=True, **kwargs)


class Strict(ma.Schema):
    """Unknown fields are refused (422), so nothing a client sends is silently ignored."""

    class Meta:
        unknown = ma.RAISE


class TokenRequest(Strict):
    username = _required(
        validate=validate.Length(min=1, max=EMAIL_MAX),
        metadata={"description": "A username or an email address."},
    )
    password = _required(validate=validate.Length(min=1, max=PASSWORD_MAX))
    device_name = _required(
        validate=validate.Length(min=1, max=DEVICE_NAME_MAX),
        metadata={"description": "Shown to the owner on the device page, e.g. “Ana's phone”."},
    )


class SignupRequest(Strict):
    username = _required(validate=validate.Length(min=1, max=USERNAME_MAX))
    email = _required(validate=validate.Length(min=1, max=EMAIL_MAX))
    password = _required(validate=validate.Length(min=1, max=PASSWORD_MAX))
    device_name = _required(validate=validate.Length(min=1, max=DEVICE_NAME_MAX))

    @ma.validates_schema(skip_on_field_errors=True)
    def _canonical(self, data: dict, **_) -> None:
        errors: dict[str, list[str]] = {}
        try:
            data["username"] = canonical_username(data["username"])
        except IdentityError as exc:
            errors["username"] = [str(exc)]
        try:
            data["email"] = canonical_email(data["email"])
        except IdentityError as exc:
            errors["email"] = [str(exc)]
        problems = password_problems(
            data["password"], username=data["username"], email=data["email"]
        )
        if problems:
            errors["password"] = [" ".join(problems)]
        if errors:
            raise ma.ValidationError(errors)


class MfaRequest(Strict):
    mfa_token = _required(validate=validate.Length(min=1, max=100))
    code = _required(
        validate=validate.Length(min=1, max=CODE_MAX),
        metadata={"description": "An authenticator code or a recovery code."},
    )


class RefreshRequest(Strict):
    refresh_token = _required(validate=validate.Length(min=1, max=200))


class PasswordChangeRequest(Strict):
    current_password = _required(validate=validate.Length(min=1, max=PASSWORD_MAX))
    new_password = _required(validate=validate.Length(min=1, max=PASSWORD_MAX))


class CursorQuery(Strict):
    cursor = fields.String(validate=validate.Length(max=64))


class UserSearchQuery(CursorQuery):
    q = fields.String(
        validate=validate.Length(max=EMAIL_MAX),
        metadata={"description": "Part of a username or email address."},
    )


class UserPatch(Strict):
    role = fields.String(validate=validate.Length(min=1, max=50))
    is_active = fields.Boolean(truthy={True}, falsy={False})

    @ma.validates_schema
    def _something(self, data: dict, **kwargs) -> None:
        if not data:
            raise ma.ValidationError(_("Send role, is_active or both."), "_schema")


class RoleCreate(Strict):
    name = _required(validate=validate.Length(min=1, max=50))
    description = fields.String(validate=validate.Length(max=255), allow_none=True)
    mfa_required = fields.Boolean(truthy={True}, falsy={False}, load_default=False)


class RolePatch(Strict):
    name = fields.String(validate=validate.Length(min=1, max=50))
    description = fields.String(validate=validate.Length(max=255), allow_none=True)
    mfa_required = fields.Boolean(truthy={True}, falsy={False})


# --- responses ----------------------------------------------------------------------


class Problem(ma.Schema):
    """An RFC 9457 problem (application/problem+json)."""

    type = fields.String(required=True)
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    code = fields.String(required=True, metadata={"description": "Machine-readable reason."})
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.Raw(),
        metadata={"description": "422 only: the messages of each field."},
    )
    mfa_token = fields.String(metadata={"description": "With code mfa_required: the second step."})


class Tokens(ma.Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"enum": ["Bearer"]})
    expires_in = fields.Integer(required=True, metadata={"description": "Seconds."})
    refresh_token = fields.String(required=True)
    device_id = fields.Integer(required=True)


class Me(ma.Schema):
    id = fields.UUID(required=True)
    username = fields.String(required=True)
    email = fields.String(required=True)
    email_verified = fields.Boolean(required=True)
    role = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    two_factor = fields.Boolean(required=True)


class SignedUp(Tokens):
    user = fields.Nested(Me, required=True)


class ConfirmationSent(ma.Schema):
    status = fields.String(required=True, metadata={"enum": ["confirmation_sent"]})


class Device(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True, allow_none=True)
    kind = fields.String(required=True, metadata={"enum": ["browser", "app"]})
    browser = fields.String(required=True, allow_none=True)
    os = fields.String(required=True, allow_none=True)
    ip = fields.String(required=True, allow_none=True)
    location = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    last_active_at = fields.DateTime(required=True)
    expires_at = fields.DateTime(required=True)
    remembered = fields.Boolean(required=True)
    current = fields.Boolean(required=True)


class DeviceList(ma.Schema):
    items = fields.List(fields.Nested(Device), required=True)


class ActivityEvent(ma.Schema):
    id = fields.Integer(required=True)
    event = fields.String(required=True)
    description = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    ip = fields.String(required=True, allow_none=True)
    browser = fields.String(required=True, allow_none=True)
    location = fields.String(required=True, allow_none=True)
    device_id = fields.Integer(required=True, allow_none=True)
    current = fields.Boolean(required=True)


class ActivityPage(ma.Schema):
    items = fields.List(fields.Nested(ActivityEvent), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class AdminUser(ma.Schema):
    id = fields.UUID(required=True)
    username = fields.String(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True)
    is_active = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)


class AdminUserPage(ma.Schema):
    items = fields.List(fields.Nested(AdminUser), required=True)
    next_cursor = fields.String(required=True, allow_none=True)


class RoleOut(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    description = fields.String(required=True, allow_none=True)
    mfa_required = fields.Boolean(required=True)
    builtin = fields.Boolean(required=True)
    user_count = fields.Integer(required=True)


class RoleList(ma.Schema):
    items = fields.List(fields.Nested(RoleOut), required=True)


class AuditItem(ma.Schema):
    id = fields.Integer(required=True)
    action = fields.String(required=True)
    actor = fields.String(required=True, allow_none=True)
    target = fields.String(required=True, allow_none=True)
    ip = fields.String(required=True, allow_none=True)
    created_at = fields.DateTime(required=True)
    details = fields.Dict(required=True, allow_none=True)


class AuditPage(ma.Schema):
    items = fields.List(fields.Nested(AuditItem), required=True)
    next_cursor = fields.String(required=True, allow_none=True)
