"""The data model. Importing this package registers every table."""

from webapp.models.audit import AuditEvent
from webapp.models.base import Base, UTCDateTime, utc_now
from webapp.models.passkey import ChallengePurpose, WebAuthnChallenge, WebAuthnCredential
from webapp.models.refresh_token import RefreshToken, RevokeReason
from webapp.models.role import ADMIN_ROLE, BUILTIN_ROLES, USER_ROLE, Role
from webapp.models.user import User

__all__ = [
    "ADMIN_ROLE",
    "BUILTIN_ROLES",
    "ChallengePurpose",
    "USER_ROLE",
    "AuditEvent",
    "Base",
    "RefreshToken",
    "RevokeReason",
    "Role",
    "User",
    "UTCDateTime",
    "WebAuthnChallenge",
    "WebAuthnCredential",
    "utc_now",
]
