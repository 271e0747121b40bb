"""The audit log page, and the whole admin story tried as a new admin would."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from tests.conftest import TEST_PASSWORD, login, post_form
from tests.test_admin import events, fresh, link, role_id, signed_in
from webapp.extensions import db
from webapp.models import AuditEvent, Role, User, utc_now

ROW_ACTION = re.compile(r"<code>([a-z_]+)</code>")


def seed_events(count: int, **fields) -> None:
    start = utc_now() - timedelta(hours=1)
    db.session.execute(
        insert(AuditEvent),
        [
            {
                "action": fields.get("action", "login"),
                "actor_username": fields.get("actor", f"person{n}"),
                "target_username": fields.get("target"),
                "target": fields.get("target"),
                "created_at": start + timedelta(seconds=n),
                "details": {"n": n},
            }
            for n in range(count)
        ],
    )
    db.session.commit()


def numbers(html: str) -> list[int]:
    return [int(n) for n in re.findall(r"<td>n: (\d+)</td>", html)]


@pytest.fixture
def admin_client(client, admin):
    assert login(client, "root-admin").status_code == 302
    return client


def test_audit_page_has_filters_and_lists_newest_first(admin_client):
    seed_events(3)
    html = admin_client.get("/admin/audit").get_data(as_text=True)
    assert '<label for="user">User</label>' in html
    assert '<label for="action">Action</label>' in html
    assert '<option value="role_changed">' in html
    assert numbers(html) == [2, 1, 0]
    # The admin's own login, recorded after the seeded rows, comes first.
    assert ROW_ACTION.findall(html)[0] == "login"
    assert html.index("root-admin") < html.index("person2")


def test_audit_page_is_paginated_both_ways(admin_client):
    seed_events(120)
    first = admin_client.get("/admin/audit").get_data(as_text=True)
    assert link(first, "prev") is None
    second = admin_client.get(link(first, "next")).get_data(as_text=True)
    third = admin_client.get(link(second, "next")).get_data(as_text=True)
    assert numbers(second) == list(range(70, 20, -1))
    assert numbers(third) == list(range(20, -1, -1))
    assert link(third, "next") is None
    back = admin_client.get(link(third, "prev")).get_data(as_text=True)
    assert numbers(back) == numbers(second)


def test_audit_filter_by_user_matches_actor_or_target(admin_client, make_user):
    seed_events(5, actor="mallory")
    seed_events(2, actor="root-admin", target="mallory", action="role_changed")
    seed_events(60, actor="someone-else")
    html = admin_client.get("/admin/audit", query_string={"user": "Mallory"}).get_data(as_text=True)
    assert len(ROW_ACTION.findall(html)) == 7
    assert "someone-else" not in html
    html = admin_client.get(
        "/admin/audit", query_string={"user": "mallory", "action": "role_changed"}
    ).get_data(as_text=True)
    assert ROW_ACTION.findall(html) == ["role_changed", "role_changed"]


def test_audit_filter_keeps_to_its_filters_across_pages(admin_client):
    seed_events(55, action="login_failed", actor=None)
    seed_events(30, action="logout")
    first = admin_client.get("/admin/audit", query_string={"action": "login_failed"})
    html = first.get_data(as_text=True)
    assert set(ROW_ACTION.findall(html)) == {"login_failed"}
    following = admin_client.get(link(html, "next")).get_data(as_text=True)
    assert ROW_ACTION.findall(following) == ["login_failed"] * 5


def test_an_unknown_action_filter_is_an_error_not_a_crash(admin_client):
    response = admin_client.get("/admin/audit", query_string={"action": "drop table"})
    assert response.status_code == 200
    assert 'class="field-error"' in response.get_data(as_text=True)
    for cursor in ["x", "-1", "9" * 40]:
        assert admin_client.get("/admin/audit", query_string={"after": cursor}).status_code == 200
        assert admin_client.get("/admin/audit", query_string={"before": cursor}).status_code == 200


def test_audit_rows_survive_the_deletion_of_their_user(admin_client, make_user):
    carol = make_user("carol")
    post_form(admin_client, f"/admin/users/{carol.id}", {"action": "deactivate"})
    db.session.delete(fresh(User, carol.id))
    db.session.commit()
    html = admin_client.get("/admin/audit", query_string={"user": "carol"}).get_data(as_text=True)
    assert "user_deactivated" in html


def test_an_admin_goes_through_the_whole_story(app, client, new_client, make_user):
    """Issue 4, "Done when", as a new admin would do it in the browser."""
    make_user("root-admin", "admin@example.com", role="admin")
    # With an authenticator app: the admin role she is given requires one.
    make_user("dora", "dora.explorer@example.net", two_factor=True)
    for n in range(60):
        make_user(f"extra{n}")
    dora = new_client()
    login(dora, "dora", remember=True)

    # Sign in, find Dora by part of her email.
    response = login(client, "root-admin", next="/admin/users")
    assert response.headers["Location"] == "/admin/users"
    html = client.get("/admin/users", query_string={"q": "EXPLORER@"}).get_data(as_text=True)
    found = re.findall(r'<a href="(/admin/users/[0-9a-f-]+)">dora</a>', html)
    assert len(found) == 1
    dora_url = found[0]

    # Make her an admin and back.
    post_form(client, dora_url, {"action": "role", "role": role_id("admin")})
    assert dora.get("/admin/").status_code == 200
    post_form(client, dora_url, {"action": "role", "role": role_id("user")})
    assert dora.get("/admin/").status_code == 403

    # Deactivate her: her open browser is signed out at its next click.
    page = client.get(dora_url).get_data(as_text=True)
    assert 'data-confirm="Deactivate dora' in page
    post_form(client, dora_url, {"action": "deactivate"})
    assert not signed_in(dora)
    assert login(new_client(), "dora").status_code == 200

    # Create a role, fail to delete it while someone holds it, delete it after.
    post_form(client, "/admin/roles", {"name": "Auditors", "description": "Read the log"})
    auditors = db.session.scalars(select(Role).where(Role.name == "auditors")).one()
    post_form(client, dora_url, {"action": "role", "role": auditors.id})
    role_url = f"/admin/roles/{auditors.id}"
    response = post_form(client, role_url, {"action": "delete"})
    refused = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "cannot be deleted while users hold it" in refused
    post_form(client, dora_url, {"action": "role", "role": role_id("user")})
    response = post_form(client, role_url, {"action": "delete"})
    assert "Role auditors deleted." in client.get(response.headers["Location"]).get_data(
        as_text=True
    )

    # Read all of it in the audit log.
    html = client.get("/admin/audit", query_string={"user": "dora"}).get_data(as_text=True)
    assert ROW_ACTION.findall(html) == [
        "role_changed",  # back to user
        "role_changed",  # to auditors
        "user_deactivated",
        "admin_access_denied",  # her click on /admin/ once demoted
        "role_changed",  # back to user
        "role_changed",  # to admin
        "login",
    ]
    roles_log = client.get("/admin/audit", query_string={"user": "root-admin"}).get_data(
        as_text=True
    )
    for action in ["role_created", "role_deleted", "role_changed", "user_deactivated"]:
        assert action in roles_log
    assert all(e.actor_username == "root-admin" for e in events("role_created"))
    assert TEST_PASSWORD not in html and TEST_PASSWORD not in roles_log


def test_audit_page_without_filters_shows_no_error(admin_client):
    html = admin_client.get("/admin/audit").get_data(as_text=True)
    assert "field-error" not in html and "aria-invalid" not in html
