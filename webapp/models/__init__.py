"""The data model. Importing this package registers every table."""

from sqlalchemy.orm import column_property

from webapp.models.audit import AuditEvent
from webapp.models.base import Base, UTCDateTime, utc_now
from webapp.models.email_token import EmailPurpose, EmailToken
from webapp.models.mfa_token import MfaToken
from webapp.models.outbox import MailStatus, OutboxMail
from webapp.models.passkey import ChallengePurpose, WebAuthnChallenge, WebAuthnCredential
from webapp.models.refresh_token import DeviceKind, RefreshToken, RevokeReason
from webapp.models.role import ADMIN_ROLE, BUILTIN_ROLES, USER_ROLE, Role
from webapp.models.security_event import KnownBrowser, SecurityEvent
from webapp.models.two_factor import RecoveryCode, TotpAuthenticator, second_factor_expression
from webapp.models.user import User

__all__ = [
    "ADMIN_ROLE",
    "BUILTIN_ROLES",
    "ChallengePurpose",
    "USER_ROLE",
    "AuditEvent",
    "DeviceKind",
    "Base",
    "EmailPurpose",
    "EmailToken",
    "KnownBrowser",
    "MailStatus",
    "OutboxMail",
    "MfaToken",
    "RecoveryCode",
    "RefreshToken",
    "RevokeReason",
    "Role",
    "SecurityEvent",
    "TotpAuthenticator",
    "User",
    "UTCDateTime",
    "WebAuthnChallenge",
    "WebAuthnCredential",
    "utc_now",
]

# Whether the account has a second factor, read in the same query that loads
# the user (every signed-in request loads device, user and role in one), so
# enforcing "your role requires two-factor" costs no query of its own.
User.has_second_factor = column_property(second_factor_expression(WebAuthnCredential))
