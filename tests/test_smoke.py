from tests.conftest import login


def test_landing_links(client):
    page = client.get("/").get_data(as_text=True)
    assert "Sign up" in page and "Log in" in page


def test_login_and_account(client, user):
    response = login(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    page = client.get("/account").get_data(as_text=True)
    assert "alice@example.com" in page
