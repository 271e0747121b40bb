"""Signup, login and logout, as a browser and as an attacker sees them."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from tests.conftest import CSRF_RE, TEST_PASSWORD, cookie, csrf_token, login, post_form
from webapp.extensions import db
from webapp.models import RefreshToken, User

SIGNUP = {
    "username": "bob",
    "email": "Bob@Example.COM",
    "password": "correct horse battery",
    "confirm_password": "correct horse battery",
}


def signup(client, **overrides):
    return post_form(client, "/signup", {**SIGNUP, **overrides})


def user_count() -> int:
    return db.session.scalar(select(func.count()).select_from(User))


def test_landing_page_links_to_signup_and_login(client):
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'href="/signup"' in html and 'href="/login"' in html


def test_landing_redirects_signed_in_user_to_account(client, user):
    login(client)
    assert client.get("/").headers["Location"] == "/account"


def test_signup_signs_in_and_shows_account(client):
    response = signup(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    page = client.get("/account").get_data(as_text=True)
    assert "bob" in page
    assert "bob@example.com" in page  # stored normalized
    assert "user" in page and "Member since" in page


def test_signup_form_has_contract_labels(client):
    html = client.get("/signup").get_data(as_text=True)
    for field, label in [
        ("username", "Username"),
        ("email", "Email"),
        ("password", "Password"),
        ("confirm_password", "Confirm password"),
    ]:
        assert f'<label for="{field}">{label}</label>' in html
    assert 'value="Sign up"' in html


def test_signup_gets_user_role_and_ignores_mass_assignment(client):
    signup(client, role="admin", role_id="1", is_active="0", is_admin="1", id="1")
    user = db.session.scalars(select(User)).one()
    assert user.role.name == "user"
    assert user.is_active is True
    assert str(user.id) != "1"


@pytest.mark.parametrize(
    "email",
    ["bob@example.com", "BOB@EXAMPLE.COM", " bob@Example.com "],
)
def test_email_is_unique_regardless_of_case(client, new_client, email):
    signup(client)
    other = new_client()
    response = signup(other, username="bobby", email=email)
    assert response.status_code == 200
    assert "An account with this email already exists." in response.get_data(as_text=True)
    assert user_count() == 1


def test_username_is_unique_regardless_of_case_and_width(client, new_client):
    signup(client)
    for name in ["BOB", "ｂｏｂ"]:  # fullwidth letters fold to "bob" under NFKC
        response = signup(new_client(), username=name, email=f"{len(name)}x@example.com")
        assert "That username is taken." in response.get_data(as_text=True)
    assert user_count() == 1


def test_lookalike_username_from_another_script_is_refused(client):
    response = signup(client, username="аdmin")  # Cyrillic "а"
    assert response.status_code == 200
    assert "Use only letters a–z" in response.get_data(as_text=True)
    assert user_count() == 0


def test_email_of_300_characters_is_refused(client):
    response = signup(client, email="a" * 290 + "@example.com")
    assert response.status_code == 200
    assert "Use at most 255 characters." in response.get_data(as_text=True)
    assert user_count() == 0


BAD_SIGNUPS = [
    ({"username": ""}, "Choose a username."),
    ({"email": ""}, "Enter your email address."),
    ({"email": "not-an-email"}, "Enter a valid email address."),
    ({"password": "", "confirm_password": ""}, "Enter a password."),
    ({"password": "short7!", "confirm_password": "short7!"}, "Use at least 8 characters."),
    ({"password": "x" * 129, "confirm_password": "x" * 129}, "Use at most 128 characters."),
    ({"confirm_password": "something else"}, "The two passwords do not match."),
    ({"username": "x" * 10_000}, "Use at most 50 characters."),
    ({"username": "bo\x00b"}, "cannot contain a NUL character"),
    ({"username": "<script>x</script>"}, "Use only letters"),
    ({"username": "🐎🐎🐎"}, "Use only letters"),
    (
        {"password": "bobexample", "confirm_password": "bobexample", "username": "bobexample"},
        "must not be your username",
    ),
    ({"password": "password1234", "confirm_password": "password1234"}, "too easy to guess"),
    # 73 bytes, and 25 euro signs (75 bytes): refused, never truncated.
    ({"password": "a" * 73, "confirm_password": "a" * 73}, "longer than 72 bytes"),
    ({"password": "€" * 25, "confirm_password": "€" * 25}, "longer than 72 bytes"),
    ({"password": "abc\x00defgh", "confirm_password": "abc\x00defgh"}, "NUL character"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_SIGNUPS)
def test_bad_signup_input_gives_form_error_and_creates_nothing(client, overrides, message):
    response = signup(client, **overrides)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert user_count() == 0


def test_html_in_input_is_escaped_on_the_form(client):
    response = signup(client, username="<b>bold</b>")
    html = response.get_data(as_text=True)
    assert "<b>bold</b>" not in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_long_and_unicode_passwords_are_accepted_exactly_as_typed(client, new_client):
    password = "correct horse 🐎 staple "
    signup(client, password=password, confirm_password=password)
    assert login(new_client(), "bob", password).headers["Location"] == "/account"
    assert login(new_client(), "bob", password.rstrip()).status_code == 200
    sixty_four = "Seven quiet otters juggle violet plums beneath 42 crooked lamps!"
    assert len(sixty_four) == 64
    response = signup(
        new_client(),
        username="carol",
        email="c@example.com",
        password=sixty_four,
        confirm_password=sixty_four,
    )
    assert response.status_code == 302


def test_password_past_72_bytes_does_not_log_in(client, make_user):
    make_user("dave", password="d" * 72)
    assert login(client, "dave", "d" * 72).status_code == 302
    other = client.application.test_client()
    response = login(other, "dave", "d" * 72 + "x")
    assert response.status_code == 200
    assert "Invalid username/email or password." in response.get_data(as_text=True)


def test_concurrent_duplicate_signups_create_one_account(app):
    clients = [app.test_client() for _ in range(20)]
    tokens = [csrf_token(c, "/signup") for c in clients]
    statuses: list[int] = []
    barrier = threading.Barrier(len(clients))

    def attempt(index: int) -> None:
        email = "race@example.com" if index % 2 else "RACE@example.com"
        barrier.wait()
        response = clients[index].post(
            "/signup",
            data={
                "csrf_token": tokens[index],
                "username": f"racer{index}",
                "email": email,
                "password": "correct horse battery",
                "confirm_password": "correct horse battery",
            },
        )
        statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.session.remove()
    assert sorted(set(statuses)) == [200, 302]
    assert statuses.count(302) == 1
    assert user_count() == 1


@pytest.mark.parametrize("identifier", ["alice", "ALICE", "alice@example.com", "Alice@Example.com"])
def test_login_by_username_or_email_in_any_case(client, user, identifier):
    assert login(client, identifier).headers["Location"] == "/account"


def test_login_form_has_contract_labels(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<label for="identifier">Username or email</label>' in html
    assert '<label for="password">Password</label>' in html
    assert '<label for="remember">Remember this device</label>' in html
    assert 'value="Log in"' in html


def comparable(response, identifier: str) -> str:
    """Return the page without what legitimately differs: the CSRF token and the name typed."""
    html = CSRF_RE.sub("", response.get_data(as_text=True))
    return html.replace(f'value="{identifier}"', "")


def test_one_generic_failure_for_unknown_user_wrong_password_and_inactive(
    client, new_client, make_user
):
    make_user("alice")
    make_user("ghost", active=False)
    attempts = [("nobody", TEST_PASSWORD), ("alice", "wrong password!"), ("ghost", TEST_PASSWORD)]
    responses = [login(new_client(), name, password) for name, password in attempts]
    bodies = {comparable(r, name) for r, (name, _) in zip(responses, attempts, strict=True)}
    assert {r.status_code for r in responses} == {200}
    assert len(bodies) == 1
    assert "Invalid username/email or password." in bodies.pop()


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.io",
        "//evil.io",
        "/\\evil.io",
        "\\/evil.io",
        "\\\\\\evil.io",
        " //evil.io",
        "\t//evil.io",
        "http:///evil.io",
        "https://evil.io\\.app.test",
        "javascript:alert(1)",
    ],
)
def test_next_cannot_redirect_off_site(client, user, target):
    response = login(client, next=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    response = client.get("/login", query_string={"next": target})
    assert response.headers["Location"] == "/account"


def test_next_local_path_is_followed(client, user):
    page = client.get("/login?next=/account/devices").get_data(as_text=True)
    assert 'value="/account/devices"' in page
    response = login(client, next="/account/devices")
    assert response.headers["Location"] == "/account/devices"


def test_anonymous_on_signed_in_page_goes_to_login_with_next(client):
    response = client.get("/account/devices")
    assert response.status_code == 302
    assert response.headers["Location"] == "/login?next=%2Faccount%2Fdevices"


def test_login_without_csrf_token_is_refused(client, user):
    response = client.post("/login", data={"identifier": "alice", "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert client.get("/account").status_code == 302


def test_credentials_in_query_string_do_not_log_in(client, user):
    client.get("/login", query_string={"identifier": "alice", "password": TEST_PASSWORD})
    assert client.get("/account").status_code == 302


def test_login_starts_a_new_session_and_rotates_csrf(app, client, user):
    name = app.config["SESSION_COOKIE_NAME"]
    old_token = csrf_token(client, "/login")
    old_cookie = cookie(client, name).value
    login(client)
    assert cookie(client, name).value != old_cookie
    response = client.post("/logout", data={"csrf_token": old_token})
    assert response.status_code == 400
    assert client.get("/account").status_code == 200


def test_logout_is_post_only_with_csrf(client, user):
    login(client)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    assert client.get("/account").status_code == 200
    response = post_form(client, "/logout", page="/account")
    assert response.headers["Location"] == "/login"
    assert client.get("/account").status_code == 302


def test_replayed_session_cookie_after_logout_is_anonymous(app, client, new_client, user):
    login(client)
    name = app.config["SESSION_COOKIE_NAME"]
    captured = cookie(client, name).value
    post_form(client, "/logout", page="/account")
    thief = new_client()
    thief.set_cookie(name, captured)
    response = thief.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login")


def test_every_login_creates_a_device(client, new_client, user):
    login(client)
    login(new_client(), remember=True)
    devices = db.session.scalars(select(RefreshToken)).all()
    assert len(devices) == 2
    assert sorted(d.is_remembered for d in devices) == [False, True]


def test_only_our_cookies_are_set(app, client, user):
    response = login(client, remember=True)
    names = {header.split("=", 1)[0] for header in response.headers.getlist("Set-Cookie")}
    assert names <= {
        app.config["SESSION_COOKIE_NAME"],
        app.config["REMEMBER_DEVICE_COOKIE_NAME"],
        app.config["KNOWN_BROWSER_COOKIE_NAME"],  # marks the browser; not a credential
    }
    assert "remember_token" not in names


@pytest.mark.parametrize(
    ("username", "password"), [("admin", "admin"), ("admin", "password"), ("root", "root")]
)
def test_no_default_accounts(client, username, password):
    assert login(client, username, password).status_code == 200
    assert user_count() == 0
