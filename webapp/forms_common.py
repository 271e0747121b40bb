"""Field helpers shared by the forms of every blueprint."""

from __future__ import annotations

from wtforms import PasswordField
from wtforms.validators import DataRequired, Length

# Generous input caps: anything longer is an error on the form, never a 500.
MAX_PASSWORD_INPUT = 1024


def password_field(label: str, autocomplete: str = "current-password") -> PasswordField:
    """Return a required password field that refuses absurdly long input."""
    return PasswordField(
        label,
        validators=[
            DataRequired(message="Enter a password."),
            Length(max=MAX_PASSWORD_INPUT, message="That is far too long for a password."),
        ],
        render_kw={"autocomplete": autocomplete},
    )
