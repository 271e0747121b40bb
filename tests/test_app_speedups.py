"""The app's own shortcuts around Flask (webapp.WebApp) answer as Flask would."""

from __future__ import annotations

import functools

import pytest


def test_ensure_sync_hands_back_plain_functions_and_methods(app):
    def view():
        return "ok"

    class Hooks:
        def after(self, response):
            return response

    method = Hooks().after
    assert app.ensure_sync(view) is view
    assert app.ensure_sync(method) is method


def test_ensure_sync_still_sends_coroutines_and_partials_to_flask(app):
    async def view():
        return "ok"

    # Flask wraps an async view to run it, which needs its "async" extra:
    # either way the coroutine function itself is never handed back.
    try:
        wrapped = app.ensure_sync(view)
    except RuntimeError as error:
        assert "async" in str(error)
    else:
        assert wrapped is not view
    partial = functools.partial(lambda x: x, 1)
    assert app.ensure_sync(partial) is partial


def test_a_global_registered_while_building_reaches_every_template(app):
    with app.test_request_context("/"):
        template = app.jinja_env.from_string("{{ fixed_links().login }} {{ csrf_token() }}")
        page = template.render()
    assert page.startswith("/login ")
    assert len(page.split()[1]) > 20


@pytest.mark.parametrize("path", ["/", "/login", "/signup"])
def test_pages_render_with_flat_template_globals(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert 'name="csrf_token"' in response.get_data(as_text=True) or path == "/"


def test_warm_up_compiles_every_template_before_the_first_visitor(app):
    from webapp import warm_up

    environment = app.jinja_env
    names = [name for name in environment.list_templates() if not name.startswith(".")]
    assert "base.html" in names and any(name.startswith("mail/") for name in names)
    environment.cache.clear()
    warm_up(app)
    cached = {template.name for template in environment.cache.values()}
    assert cached == set(names)
