"""The data model. Importing this package registers every table."""

from webapp.models.audit import AuditEvent
from webapp.models.base import Base, UTCDateTime, utc_now
from webapp.models.email_token import EmailPurpose, EmailToken
from webapp.models.refresh_token import RefreshToken, RevokeReason
from webapp.models.role import ADMIN_ROLE, BUILTIN_ROLES, USER_ROLE, Role
from webapp.models.security_event import KnownBrowser, SecurityEvent
from webapp.models.two_factor import RecoveryCode, TotpAuthenticator
from webapp.models.user import User

__all__ = [
    "ADMIN_ROLE",
    "BUILTIN_ROLES",
    "USER_ROLE",
    "AuditEvent",
    "Base",
    "EmailPurpose",
    "EmailToken",
    "KnownBrowser",
    "RecoveryCode",
    "RefreshToken",
    "RevokeReason",
    "Role",
    "SecurityEvent",
    "TotpAuthenticator",
    "User",
    "UTCDateTime",
    "utc_now",
]
