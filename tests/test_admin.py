"""The admin area: access for admins only, the users list and page, roles."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from flask import url_for
from sqlalchemy import func, insert, select

from tests.conftest import TEST_PASSWORD, cookie, csrf_token, enable_totp, login, post_form
from webapp.extensions import db
from webapp.models import AuditEvent, RefreshToken, Role, User, utc_now

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


# Helpers -------------------------------------------------------------------


def fresh(model, ident):
    """Read a row as the database has it now, not as this session remembers it."""
    db.session.expire_all()
    return db.session.get(model, ident)


def role_id(name: str) -> int:
    return db.session.scalars(select(Role.id).where(Role.name == name)).one()


def events(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def signed_in(client) -> bool:
    """Return whether the browser is signed in (an account page answers 200)."""
    return client.get("/account").status_code == 200


def user_url(user) -> str:
    return f"/admin/users/{user.id}"


def admin_post(client, url: str, data: dict):
    """POST an admin form with the CSRF token of the page showing it."""
    return post_form(client, url, data)


def seed_users(count: int, *, prefix: str = "member", same_time_every: int = 1) -> list[User]:
    """Insert `count` users quickly; every `same_time_every` share one creation time."""
    user_role = role_id("user")
    start = utc_now() - timedelta(days=1)
    rows = [
        {
            "id": uuid.uuid4(),
            "username": f"{prefix}{n:04d}",
            "email": f"{prefix}{n:04d}@example.org",
            "password_hash": "not-a-real-hash",
            "role_id": user_role,
            "is_active": True,
            "created_at": start + timedelta(seconds=n // same_time_every),
            "updated_at": start,
        }
        for n in range(count)
    ]
    db.session.execute(insert(User), rows)
    db.session.commit()
    return list(db.session.scalars(select(User).where(User.username.like(f"{prefix}%"))))


USERNAME_CELL = re.compile(r'<td><a href="/admin/users/[0-9a-f-]+">([^<]+)</a></td>')


def listed_usernames(html: str) -> list[str]:
    return USERNAME_CELL.findall(html)


def link(html: str, rel: str) -> str | None:
    match = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
    return match.group(1).replace("&amp;", "&") if match else None


@pytest.fixture
def admin_client(client, admin):
    assert login(client, "root-admin").status_code == 302
    return client


@pytest.fixture
def user_client(new_client, user):
    browser = new_client()
    assert login(browser).status_code == 302
    return browser


# Access --------------------------------------------------------------------


def admin_urls(app, user_id, some_role_id) -> dict[str, set[str]]:
    """Return every admin URL (with real ids filled in) and the methods it accepts."""
    urls: dict[str, set[str]] = {}
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if not rule.endpoint.startswith("admin."):
                continue
            values = {}
            for argument in rule.arguments:
                if argument == "user_id":
                    values[argument] = user_id
                elif argument == "role_id":
                    values[argument] = some_role_id
                else:
                    raise AssertionError(f"no test value for <{argument}> in {rule.rule}")
            urls.setdefault(url_for(rule.endpoint, **values), set()).update(rule.methods)
    return urls


def call(client, method: str, url: str, token: str):
    data = {"csrf_token": token} if method in {"POST", "PUT", "PATCH", "DELETE"} else None
    return client.open(url, method=method, data=data)


def test_every_admin_url_and_method_is_guarded(app, new_client, make_user, admin, user):
    editors = Role(name="editors")
    db.session.add(editors)
    db.session.commit()
    target = make_user("target")
    urls = admin_urls(app, target.id, editors.id)
    assert {"/admin/", "/admin/users", "/admin/roles", "/admin/audit"} <= set(urls)
    assert f"/admin/users/{target.id}" in urls and f"/admin/roles/{editors.id}" in urls

    anonymous, member, boss = new_client(), new_client(), new_client()
    login(member)
    login(boss, "root-admin")
    tokens = {
        "anonymous": csrf_token(anonymous, "/login"),
        "user": csrf_token(member, "/account"),
        "admin": csrf_token(boss, "/account"),
    }
    checked = 0
    for url, allowed in urls.items():
        for method in METHODS:
            results = {
                who: call(browser, method, url, tokens[who])
                for who, browser in [("anonymous", anonymous), ("user", member), ("admin", boss)]
            }
            if method not in allowed:
                assert {r.status_code for r in results.values()} == {405}, (method, url)
                continue
            checked += 1
            anon = results["anonymous"]
            assert anon.status_code == 302, (method, url)
            location = urlsplit(anon.headers["Location"])
            assert location.path == "/login"
            assert parse_qs(location.query)["next"] == [url], (method, url)
            assert results["user"].status_code == 403, (method, url)
            assert results["admin"].status_code not in {302, 403, 405, 500}, (method, url)
    assert checked >= 20
    # Nothing the admin posted with an empty form changed anything.
    assert fresh(User, target.id).is_active and fresh(User, target.id).role.name == "user"
    assert fresh(Role, editors.id) is not None


def test_a_user_is_refused_and_the_refusal_is_logged(app, user_client, user, admin, caplog):
    html = user_client.get("/admin/users").get_data(as_text=True)
    assert "You do not have permission" in html
    response = post_form(
        user_client,
        user_url(user),
        {"action": "role", "role": role_id("admin")},
        page="/account",
    )
    assert response.status_code == 403
    assert fresh(User, user.id).role.name == "user"
    refused = events("admin_access_denied")
    assert [e.details["method"] for e in refused] == ["GET", "POST"]
    assert refused[-1].actor_username == "alice"
    assert any(
        'admin access denied user="alice" method="POST"' in r.getMessage() for r in caplog.records
    )


def test_the_admin_link_shows_only_for_admins(client, new_client, user, admin):
    login(client)
    assert "/admin/" not in client.get("/account").get_data(as_text=True)
    boss = new_client()
    login(boss, "root-admin")
    home = boss.get("/admin/").get_data(as_text=True)
    for path in ["/admin/users", "/admin/roles", "/admin/audit"]:
        assert f'href="{path}"' in home


def test_demoted_admin_loses_access_at_the_next_request(app, admin_client, new_client, make_user):
    second = make_user("second-admin", role="admin")
    other = new_client()
    login(other, "second-admin")
    assert other.get("/admin/users").status_code == 200
    response = admin_post(
        admin_client, user_url(second), {"action": "role", "role": role_id("user")}
    )
    assert response.status_code == 302
    assert other.get("/admin/users").status_code == 403
    assert fresh(User, second.id).role.name == "user"
    change = events("role_changed")[-1]
    assert change.actor_username == "root-admin" and change.target_username == "second-admin"
    assert change.details == {"from": "admin", "to": "user"}


@pytest.mark.parametrize(
    "action",
    [
        {"action": "role", "role": "ADMIN"},
        {"action": "deactivate"},
        {"action": "signout"},
    ],
)
def test_admin_post_without_csrf_token_is_400_and_changes_nothing(
    app, admin_client, new_client, user, action
):
    browser = new_client()
    login(browser)
    data = dict(action)
    if data.get("role") == "ADMIN":
        data["role"] = role_id("admin")
    response = admin_client.post(user_url(user), data=data)
    assert response.status_code == 400
    assert fresh(User, user.id).is_active and fresh(User, user.id).role.name == "user"
    assert signed_in(browser)


def test_role_create_without_csrf_token_is_400(admin_client):
    response = admin_client.post("/admin/roles", data={"name": "editors"})
    assert response.status_code == 400
    assert db.session.scalars(select(Role).where(Role.name == "editors")).first() is None


def test_admin_post_from_a_remembered_session_asks_for_the_password_first(
    app, new_client, admin, user
):
    first = new_client()
    login(first, "root-admin", remember=True)
    name = app.config["REMEMBER_DEVICE_COOKIE_NAME"]
    browser = new_client()
    browser.set_cookie(name, cookie(first, name).value)
    assert browser.get(user_url(user)).status_code == 200  # reading needs no password

    page = post_form(browser, user_url(user), {"action": "deactivate"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Confirm your password" in html
    assert fresh(User, user.id).is_active

    wrong = post_form(
        browser,
        user_url(user),
        {"action": "deactivate", "reauth_for": "POST", "reauth_password": "not it"},
    )
    assert "That password is not right." in wrong.get_data(as_text=True)
    assert fresh(User, user.id).is_active

    done = post_form(
        browser,
        user_url(user),
        {"action": "deactivate", "reauth_for": "POST", "reauth_password": TEST_PASSWORD},
    )
    assert done.status_code == 302
    assert not fresh(User, user.id).is_active


# Users list ----------------------------------------------------------------


def test_users_list_shows_the_columns_and_search_field(admin_client, user):
    html = admin_client.get("/admin/users").get_data(as_text=True)
    assert '<label for="q">Search</label>' in html
    for text in ["Username", "Email", "Role", "Active", "Created", "alice", "alice@example.com"]:
        assert text in html
    assert listed_usernames(html) == ["alice", "root-admin"]  # newest first


def test_users_list_pages_50_newest_first_without_counting(admin_client, admin, count_queries):
    # Pairs of users share a creation time: the id breaks the tie, so no row
    # is skipped or repeated at a page boundary.
    seed_users(130, same_time_every=2)
    with count_queries() as statements:
        first = admin_client.get("/admin/users").get_data(as_text=True)
    assert not any("count(" in s.lower() for s in statements)

    seen = listed_usernames(first)
    assert len(seen) == 50
    assert link(first, "prev") is None
    pages = [first]
    while (next_url := link(pages[-1], "next")) is not None:
        pages.append(admin_client.get(next_url).get_data(as_text=True))
        seen += listed_usernames(pages[-1])
    assert len(pages) == 3 and len(listed_usernames(pages[-1])) == 31
    expected = sorted(
        db.session.scalars(select(User)), key=lambda u: (u.created_at, u.id.hex), reverse=True
    )
    assert seen == [u.username for u in expected]
    assert seen[0] == "root-admin" and set(seen[-2:]) == {"member0000", "member0001"}

    back = admin_client.get(link(pages[2], "prev")).get_data(as_text=True)
    assert listed_usernames(back) == listed_usernames(pages[1])
    back = admin_client.get(link(back, "prev")).get_data(as_text=True)
    assert listed_usernames(back) == listed_usernames(pages[0])
    assert link(back, "prev") is None


def test_users_list_ignores_a_malformed_cursor(admin_client, admin):
    for cursor in ["x", "1_nothex", "99999999999999999999999_" + "0" * 32, "-" * 300]:
        response = admin_client.get("/admin/users", query_string={"after": cursor})
        assert response.status_code == 200
        assert "root-admin" in response.get_data(as_text=True)
        response = admin_client.get("/admin/users", query_string={"before": cursor})
        assert response.status_code == 200


def test_search_matches_part_of_username_or_email_in_any_case(admin_client, make_user):
    make_user("bob", "robert@example.com")
    make_user("carol", "carol@elsewhere.net")
    seed_users(60)

    def found(term: str) -> list[str]:
        html = admin_client.get("/admin/users", query_string={"q": term}).get_data(as_text=True)
        return listed_usernames(html)

    assert found("ROBERT@EX") == ["bob"]
    assert found("aRo") == ["carol"]
    assert found("elsewhere") == ["carol"]
    assert found("  Bob ") == ["bob"]
    assert found("nobody-here") == []
    assert len(found("member")) == 50
    html = admin_client.get("/admin/users", query_string={"q": "member"}).get_data(as_text=True)
    following = admin_client.get(link(html, "next")).get_data(as_text=True)
    assert len(listed_usernames(following)) == 10
    assert all(name.startswith("member") for name in listed_usernames(following))


@pytest.mark.parametrize("wildcard", ["%", "_", "\\", "%%", "a_c"])
def test_search_wildcards_are_literal(admin_client, make_user, wildcard):
    make_user("abc", "abc@example.com")
    make_user("dave", "dave@example.com")
    html = admin_client.get("/admin/users", query_string={"q": wildcard}).get_data(as_text=True)
    assert listed_usernames(html) == []


def test_search_that_is_too_long_says_so(admin_client, admin):
    response = admin_client.get("/admin/users", query_string={"q": "x" * 300})
    assert response.status_code == 200
    assert "Use at most 255 characters." in response.get_data(as_text=True)


# One user ------------------------------------------------------------------


def test_user_page_has_the_contract_labels(admin_client, new_client, user):
    for _ in range(2):
        login(new_client())
    html = admin_client.get(user_url(user)).get_data(as_text=True)
    assert '<label for="role">Role</label>' in html
    assert 'value="Save role"' in html
    assert ">Deactivate</button>" in html and ">Activate</button>" not in html
    assert ">Sign out all devices</button>" in html
    assert html.count(">Revoke</button>") == 2
    # Destructive buttons ask first, through static/js/app.js (no inline script).
    assert html.count("data-confirm=") == 4
    assert "<script>" not in html and "onclick" not in html and "style=" not in html


@pytest.mark.parametrize(
    "path", ["/admin/users/" + str(uuid.UUID(int=7)), "/admin/users/not-a-uuid", "/admin/users/1"]
)
def test_unknown_or_malformed_user_id_is_404(admin_client, path):
    assert admin_client.get(path).status_code == 404
    token = csrf_token(admin_client, "/admin/users")
    assert (
        admin_client.post(path, data={"csrf_token": token, "action": "signout"}).status_code == 404
    )


def test_admin_makes_a_user_admin_and_back(admin_client, new_client, user):
    enable_totp(user)  # as the admin role requires, and admin pages need the browser to pass
    browser = new_client()
    login(browser)
    assert browser.get("/admin/").status_code == 403
    admin_post(admin_client, user_url(user), {"action": "role", "role": role_id("admin")})
    assert fresh(User, user.id).role.name == "admin"
    assert browser.get("/admin/").status_code == 200
    admin_post(admin_client, user_url(user), {"action": "role", "role": role_id("user")})
    assert browser.get("/admin/").status_code == 403
    assert [e.details["to"] for e in events("role_changed")] == ["admin", "user"]


@pytest.mark.parametrize("tampered", ["999", "abc", "", "-1", "99999999999999999999"])
def test_tampered_role_id_is_refused_with_no_change(admin_client, user, tampered):
    response = admin_post(admin_client, user_url(user), {"action": "role", "role": tampered})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'class="field-error"' in html
    assert fresh(User, user.id).role.name == "user"
    assert events("role_changed") == []


def test_unknown_action_is_400(admin_client, user):
    response = admin_post(admin_client, user_url(user), {"action": "explode"})
    assert response.status_code == 400


def test_the_last_active_admin_cannot_demote_or_deactivate_themself(admin_client, admin):
    page = admin_client.get(user_url(admin)).get_data(as_text=True)
    assert "is the last active admin" in page
    for data in [{"action": "role", "role": role_id("user")}, {"action": "deactivate"}]:
        response = admin_post(admin_client, user_url(admin), data)
        assert response.status_code == 302
        html = admin_client.get(response.headers["Location"]).get_data(as_text=True)
        assert "root-admin is the last active admin and cannot be" in html
    current = fresh(User, admin.id)
    assert current.is_active and current.role.name == "admin"
    assert events("role_changed") == [] and events("user_deactivated") == []


def test_an_inactive_admin_does_not_count_as_another_admin(admin_client, make_user, admin):
    make_user("dormant", role="admin", active=False)
    admin_post(admin_client, user_url(admin), {"action": "deactivate"})
    assert fresh(User, admin.id).is_active


def test_with_two_admins_either_can_be_demoted_but_not_both(admin_client, new_client, make_user):
    second = make_user("second-admin", role="admin")
    other = new_client()
    login(other, "second-admin")
    response = admin_post(other, f"/admin/users/{admin_id(admin_client)}", {"action": "deactivate"})
    assert response.status_code == 302
    assert not signed_in(admin_client)  # root-admin was deactivated and signed out
    response = admin_post(other, user_url(second), {"action": "role", "role": role_id("user")})
    assert "is the last active admin" in other.get(response.headers["Location"]).get_data(
        as_text=True
    )
    assert fresh(User, second.id).role.name == "admin"


def admin_id(client) -> uuid.UUID:
    return db.session.scalars(select(User.id).where(User.username == "root-admin")).one()


def test_admin_who_demotes_themself_is_sent_away_from_admin(admin_client, make_user, admin):
    make_user("second-admin", role="admin")
    response = admin_post(
        admin_client, user_url(admin), {"action": "role", "role": role_id("user")}
    )
    assert response.headers["Location"] == "/account"
    assert admin_client.get("/admin/").status_code == 403


def test_deactivating_signs_the_user_out_everywhere(app, admin_client, new_client, user):
    open_browser = new_client()
    login(open_browser)
    remembered = new_client()
    login(remembered, remember=True)
    name = app.config["REMEMBER_DEVICE_COOKIE_NAME"]
    token = cookie(remembered, name).value
    assert signed_in(open_browser) and signed_in(remembered)

    response = admin_post(admin_client, user_url(user), {"action": "deactivate"})
    assert response.status_code == 302
    assert "deactivated and signed out of 2 devices" in admin_client.get(
        response.headers["Location"]
    ).get_data(as_text=True)

    assert not signed_in(open_browser)
    assert not signed_in(remembered)
    cookie_only = new_client()
    cookie_only.set_cookie(name, token)
    assert not signed_in(cookie_only)
    assert login(new_client()).status_code == 200  # cannot log in again either
    revoked = db.session.scalars(select(RefreshToken).where(RefreshToken.user_id == user.id)).all()
    assert revoked and all(d.is_revoked and d.revoked_reason == "admin" for d in revoked)
    event = events("user_deactivated")[-1]
    assert (event.actor_username, event.target_username) == ("root-admin", "alice")
    assert event.details == {"devices": 2}

    html = admin_client.get(user_url(user)).get_data(as_text=True)
    assert ">Activate</button>" in html and ">Deactivate</button>" not in html
    admin_post(admin_client, user_url(user), {"action": "activate"})
    assert fresh(User, user.id).is_active
    assert login(new_client()).status_code == 302
    assert events("user_activated")[-1].actor_username == "root-admin"


def test_sign_out_all_devices_keeps_the_account_active(admin_client, new_client, user):
    browsers = [new_client() for _ in range(3)]
    for browser in browsers:
        login(browser, remember=True)
    admin_post(admin_client, user_url(user), {"action": "signout"})
    assert not any(signed_in(browser) for browser in browsers)
    assert fresh(User, user.id).is_active
    assert login(new_client()).status_code == 302
    event = events("devices_signed_out")[-1]
    assert (event.actor_username, event.target_username, event.details) == (
        "root-admin",
        "alice",
        {"devices": 3},
    )


def test_signing_out_ones_own_devices_keeps_this_one(admin_client, new_client, admin):
    elsewhere = new_client()
    login(elsewhere, "root-admin")
    admin_post(admin_client, user_url(admin), {"action": "signout"})
    assert signed_in(admin_client) and not signed_in(elsewhere)


def test_revoking_one_device_signs_out_only_that_one(admin_client, new_client, user, make_user):
    first, second = new_client(), new_client()
    login(first)
    login(second)
    devices = db.session.scalars(
        select(RefreshToken).where(RefreshToken.user_id == user.id).order_by(RefreshToken.id)
    ).all()
    response = admin_post(
        admin_client, user_url(user), {"action": "revoke", "device_id": devices[0].id}
    )
    assert response.status_code == 302
    assert not signed_in(first) and signed_in(second)
    event = events("device_revoked")[-1]
    assert (event.actor_username, event.target_username) == ("root-admin", "alice")
    assert event.details == {"device": devices[0].id, "by_admin": True}
    html = admin_client.get(user_url(user)).get_data(as_text=True)
    assert html.count(">Revoke</button>") == 1

    # Another user's device, through this user's page: not found, nothing revoked.
    bob = make_user("bob")
    bobs = new_client()
    login(bobs, "bob")
    bob_device = db.session.scalars(
        select(RefreshToken.id).where(RefreshToken.user_id == bob.id)
    ).one()
    for device_id in [bob_device, 99999999999]:
        response = admin_post(
            admin_client, user_url(user), {"action": "revoke", "device_id": device_id}
        )
        assert response.status_code in {400, 404}
    assert signed_in(bobs)


def test_user_text_is_escaped_on_admin_pages(admin_client, admin):
    # Validation keeps HTML out of usernames; an old or imported row might not.
    nasty = '<b id="x">evil</b>'
    user_role = role_id("user")
    nasty_id = uuid.uuid4()
    db.session.execute(
        insert(User),
        [
            {
                "id": nasty_id,
                "username": nasty,
                "email": "<i>x</i>@example.com",
                "password_hash": "x",
                "role_id": user_role,
                "is_active": True,
                "created_at": utc_now(),
                "updated_at": utc_now(),
            }
        ],
    )
    db.session.commit()
    target = db.session.get(User, nasty_id)
    from webapp.domain.audit import record

    record("role_changed", actor=admin, target_user=target, details={"note": "<script>x</script>"})
    db.session.commit()
    for path in ["/admin/users", f"/admin/users/{nasty_id}", "/admin/audit"]:
        html = admin_client.get(path).get_data(as_text=True)
        assert "&lt;b id=&#34;x&#34;&gt;evil&lt;/b&gt;" in html, path
        assert nasty not in html and "<i>x</i>" not in html and "<script>x" not in html


# Roles ---------------------------------------------------------------------


def role_by_name(name: str) -> Role | None:
    db.session.expire_all()
    return db.session.scalars(select(Role).where(Role.name == name)).first()


def test_roles_page_has_the_contract_labels_and_counts(admin_client, make_user):
    make_user("bob")
    make_user("carol")
    html = admin_client.get("/admin/roles").get_data(as_text=True)
    assert '<label for="name">Name</label>' in html
    assert '<label for="description">Description</label>' in html
    assert 'value="Create role"' in html
    counts = dict(
        re.findall(
            r'href="/admin/roles/\d+">(\w+)</a>.*?</td>\s*<td>[^<]*</td>\s*<td>(\d+)</td>',
            html,
            re.S,
        )
    )
    assert counts == {"admin": "1", "user": "2"}


def test_role_counts_take_one_query_however_many_roles(admin_client, make_user, count_queries):
    with count_queries() as few:
        admin_client.get("/admin/roles")
    for n in range(10):
        db.session.add(Role(name=f"team{n}"))
    db.session.commit()
    for n in range(10):
        make_user(f"worker{n}", role=f"team{n}")
    with count_queries() as many:
        html = admin_client.get("/admin/roles").get_data(as_text=True)
    assert "team9" in html
    assert len(many) == len(few)
    assert sum("count(" in s.lower() for s in many) == 1


def test_create_role_stores_a_lowercase_name(admin_client):
    response = admin_post(
        admin_client, "/admin/roles", {"name": "  Editors ", "description": "Edit things"}
    )
    assert response.status_code == 302
    role = role_by_name("editors")
    assert role is not None and role.description == "Edit things"
    event = events("role_created")[-1]
    assert event.actor_username == "root-admin" and event.target == "role editors"


@pytest.mark.parametrize("taken", ["editors", "EDITORS", "Editors", "admin", "User"])
def test_duplicate_role_name_is_a_clear_error(admin_client, taken):
    admin_post(admin_client, "/admin/roles", {"name": "editors"})
    response = admin_post(admin_client, "/admin/roles", {"name": taken})
    assert response.status_code == 400
    assert "A role with that name already exists." in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Role.id))) == 3


@pytest.mark.parametrize(
    "name", ["", "   ", "a", "1st", "has space", "x" * 33, "éditeurs", "<b>", "dot.name", "-x"]
)
def test_invalid_role_names_are_refused(admin_client, name):
    response = admin_post(admin_client, "/admin/roles", {"name": name})
    assert response.status_code == 400
    assert 'class="field-error"' in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count(Role.id))) == 2


def test_role_page_has_the_contract_labels(admin_client):
    admin_post(admin_client, "/admin/roles", {"name": "editors"})
    html = admin_client.get(f"/admin/roles/{role_by_name('editors').id}").get_data(as_text=True)
    assert '<label for="name">Name</label>' in html
    assert '<label for="description">Description</label>' in html
    assert 'value="Save"' in html
    assert ">Delete role</button>" in html and "data-confirm=" in html


def test_rename_and_describe_a_role(admin_client):
    admin_post(admin_client, "/admin/roles", {"name": "editors"})
    role = role_by_name("editors")
    url = f"/admin/roles/{role.id}"
    response = admin_post(
        admin_client, url, {"action": "save", "name": "Writers", "description": "They write"}
    )
    assert response.status_code == 302
    renamed = fresh(Role, role.id)
    assert (renamed.name, renamed.description) == ("writers", "They write")
    assert events("role_renamed")[-1].details == {
        "role_id": role.id,
        "from": "editors",
        "to": "writers",
    }
    assert events("role_updated")[-1].actor_username == "root-admin"
    response = admin_post(admin_client, url, {"action": "save", "name": "admin"})
    assert response.status_code == 400
    assert "A role with that name already exists." in response.get_data(as_text=True)
    assert fresh(Role, role.id).name == "writers"


@pytest.mark.parametrize("name", ["admin", "user"])
def test_built_in_roles_cannot_be_renamed_or_deleted(admin_client, name):
    role = role_by_name(name)
    url = f"/admin/roles/{role.id}"
    page = admin_client.get(url).get_data(as_text=True)
    assert "readonly" in page and ">Delete role</button>" not in page
    response = admin_post(admin_client, url, {"action": "save", "name": "boss"})
    assert response.status_code == 400
    assert f"The built-in role {name} cannot be renamed." in response.get_data(as_text=True)
    response = admin_post(admin_client, url, {"action": "delete"})
    message = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"The built-in role {name} cannot be deleted." in message
    assert role_by_name(name) is not None
    # Its description may change.
    admin_post(admin_client, url, {"action": "save", "name": name, "description": "Core"})
    assert role_by_name(name).description == "Core"


def test_a_role_cannot_be_deleted_while_a_user_holds_it(admin_client, user):
    admin_post(admin_client, "/admin/roles", {"name": "editors"})
    editors = role_by_name("editors")
    admin_post(admin_client, user_url(user), {"action": "role", "role": editors.id})
    url = f"/admin/roles/{editors.id}"
    response = admin_post(admin_client, url, {"action": "delete"})
    html = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "cannot be deleted while users hold it (1)" in html
    assert role_by_name("editors") is not None
    admin_post(admin_client, user_url(user), {"action": "role", "role": role_id("user")})
    response = admin_post(admin_client, url, {"action": "delete"})
    assert response.headers["Location"] == "/admin/roles"
    assert role_by_name("editors") is None
    assert events("role_deleted")[-1].target == "role editors"


def test_the_database_also_refuses_deleting_a_held_role(app, user):
    from sqlalchemy.exc import IntegrityError

    held = fresh(User, user.id).role
    with pytest.raises(IntegrityError):
        db.session.execute(Role.__table__.delete().where(Role.id == held.id))
        db.session.flush()
    db.session.rollback()


@pytest.mark.parametrize("path", ["/admin/roles/999", "/admin/roles/99999999999999999999"])
def test_unknown_role_is_404(admin_client, path):
    assert admin_client.get(path).status_code == 404
    token = csrf_token(admin_client, "/admin/roles")
    response = admin_client.post(path, data={"csrf_token": token, "action": "delete"})
    assert response.status_code == 404


def test_role_description_is_escaped(admin_client):
    admin_post(admin_client, "/admin/roles", {"name": "editors", "description": "<img src=x>"})
    role = role_by_name("editors")
    for path in ["/admin/roles", f"/admin/roles/{role.id}"]:
        html = admin_client.get(path).get_data(as_text=True)
        assert "&lt;img src=x&gt;" in html and "<img src=x>" not in html


def test_next_after_login_returns_to_the_admin_page(client, admin):
    response = client.get("/admin/users?q=root")
    target = parse_qs(urlsplit(response.headers["Location"]).query)["next"][0]
    assert unquote(target) == "/admin/users?q=root"
    response = login(client, "root-admin", next=target)
    assert response.headers["Location"] == "/admin/users?q=root"


def test_admin_pages_have_one_heading_and_a_label_for_every_field(admin_client, new_client, user):
    login(new_client())
    admin_post(admin_client, "/admin/roles", {"name": "editors"})
    pages = [
        "/admin/",
        "/admin/users",
        user_url(user),
        "/admin/roles",
        f"/admin/roles/{role_by_name('editors').id}",
        "/admin/audit",
    ]
    for path in pages:
        html = admin_client.get(path).get_data(as_text=True)
        assert html.count("<h1") == 1, path
        assert "style=" not in html and "<script>" not in html and " onclick" not in html
        labels = set(re.findall(r'<label for="([^"]+)"', html))
        fields = re.findall(r"<(?:input|select|textarea)\b([^>]*)>", html)
        for attributes in fields:
            if re.search(r'type="(hidden|submit)"', attributes):
                continue
            field_id = re.search(r'\sid="([^"]+)"', attributes)
            assert field_id and field_id.group(1) in labels, (path, attributes)
