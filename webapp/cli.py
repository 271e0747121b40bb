"""Flask commands (`flask --app wsgi ...`): accounts, purges, and the mail worker."""

from __future__ import annotations

import sys
from datetime import timedelta

import click
from flask import Flask

from webapp.extensions import db


def register_commands(app: Flask) -> None:
    app.cli.add_command(create_admin)
    app.cli.add_command(purge_devices)
    app.cli.add_command(purge_activity)
    app.cli.add_command(send_mail)


@click.command("create-admin")
@click.option("--username", required=True, help="The admin's username.")
@click.option("--email", required=True, help="The admin's email address.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_admin(username: str, email: str, password_stdin: bool) -> None:
    """Create an active admin account."""
    from webapp.domain.users import DuplicateAccount, create_user
    from webapp.models import ADMIN_ROLE
    from webapp.security.identity import IdentityError, canonical_email, canonical_username
    from webapp.security.passwords import password_problems

    try:
        name = canonical_username(username)
    except IdentityError as exc:
        raise click.ClickException(f"Username: {exc}") from exc
    try:
        address = canonical_email(email)
    except IdentityError as exc:
        raise click.ClickException(f"Email: {exc}") from exc

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problems = password_problems(password, username=name, email=address)
    if problems:
        raise click.ClickException("Password: " + " ".join(problems))

    try:
        user = create_user(name, address, password, role_name=ADMIN_ROLE)
        from webapp.domain.audit import record
        from webapp.models import utc_now

        # The operator vouches for the address: an admin is never locked out
        # (or purged) by EMAIL_VERIFICATION=mandatory.
        user.email_verified_at = utc_now()

        record("admin_created", actor=user, target_user=user, details={"via": "cli"})
        db.session.commit()
    except DuplicateAccount as exc:
        db.session.rollback()
        taken = "username" if exc.field == "username" else "email"
        raise click.ClickException(f"An account with that {taken} already exists.") from exc
    click.echo(f"Created admin {name}.")


@click.command("purge-devices")
@click.option("--older-than-days", default=30, show_default=True, type=click.IntRange(min=0))
def purge_devices(older_than_days: int) -> None:
    """Delete devices that expired or were revoked more than N days ago.

    Also deletes email links spent or expired as long ago, the token API's
    expired second steps (`mfa_tokens`) and, with
    EMAIL_VERIFICATION=mandatory, accounts never confirmed after 7 days.
    """
    from webapp.domain.addresses import purge_unconfirmed, verification_mandatory
    from webapp.extensions import db
    from webapp.security.devices import purge_devices as purge
    from webapp.security.email_tokens import purge as purge_email_links
    from webapp.security.mfa_tokens import purge_mfa_tokens

    older_than = timedelta(days=older_than_days)
    count = purge(older_than)
    click.echo(f"Purged {count} device{'s' if count != 1 else ''}.")
    purge_email_links(older_than)
    purge_mfa_tokens()
    db.session.commit()
    if verification_mandatory():
        deleted = purge_unconfirmed()
        click.echo(
            f"Deleted {deleted} account{'s' if deleted != 1 else ''} "
            "whose email address was never confirmed."
        )


@click.command("purge-activity")
def purge_activity() -> None:
    """Delete security activity and known browsers older than SECURITY_LOG_DAYS, and mail
    done over 7 days ago."""
    from flask import current_app

    from webapp.domain.activity import purge_activity as purge
    from webapp.domain.new_browser import purge_known_browsers
    from webapp.mail import purge_outbox

    count = purge()
    days = current_app.config["SECURITY_LOG_DAYS"]
    click.echo(f"Purged {count} event{'s' if count != 1 else ''} older than {days} days.")
    # A browser unseen that long is new again: its next sign-in mails the alert.
    browsers = purge_known_browsers()
    click.echo(f"Forgot {browsers} browser{'s' if browsers != 1 else ''} not seen for {days} days.")
    mails = purge_outbox()
    click.echo(f"Purged {mails} mail{'s' if mails != 1 else ''} sent or failed over 7 days ago.")


@click.command("send-mail")
@click.option("--once", is_flag=True, help="Deliver the mail that is due, then exit.")
def send_mail(once: bool) -> None:
    """Deliver the outbox until stopped (SIGTERM lets the mail in hand finish)."""
    from webapp.mail import run_worker

    count = run_worker(once=once)
    click.echo(f"Delivered {count} mail{'s' if count != 1 else ''}.")
