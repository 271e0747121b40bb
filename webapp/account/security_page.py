"""The security page (`/account/security`): two-factor, passkeys and the alert setting.

Rendered from one place, because the passkey views show it again when the
add form comes back with errors.
"""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from webapp.account.forms import AddPasskeyForm, NewBrowserAlertsForm
from webapp.domain.two_factor import security_overview


def render_security_page(passkey_form: AddPasskeyForm | None = None) -> str:
    """Render the sign-in methods for the signed-in user."""
    alerts_form = NewBrowserAlertsForm(data={"new_browser_alerts": current_user.new_browser_alerts})
    return render_template(
        "account/security.html",
        info=security_overview(current_user),
        alerts_form=alerts_form,
        passkey_form=passkey_form,
    )
