"""The token API for apps (`/api/v1`): JSON in and out, bearer tokens, no cookies.

Views in `routes.py` (auth, me) and `admin.py`; schemas in `schemas.py`;
the OpenAPI 3.1 document is generated from those schemas by flask-smorest
(marshmallow, webargs, apispec), the usual Flask choice, so what validates
a request is what the document says. Errors are problem+json
(`webapp.errors`); CORS only for API_CORS_ORIGINS (flask-cors).
"""

from __future__ import annotations

import http

from flask import Flask
from flask_cors import CORS
from flask_smorest import Api
from flask_smorest.utils import prepare_response

from webapp.errors import PROBLEM_TYPE, http_error
from webapp.extensions import csrf


class KeystoneApi(Api):
    """flask-smorest's Api, documenting errors as problem+json and answering them
    with the app's own handler (webapp.errors), which answers every /api/
    error, a 404 of an unknown path included, the same way.

    `_register_responses` is flask-smorest's (not public) hook for the default
    responses; `test_openapi_document_and_docs_page` checks they stay problem+json.
    """

    def handle_http_exception(self, error):
        """flask-smorest's documented hook, registered for every HTTP error of the app:
        answer as the app does (a page, or problem+json under /api/), whichever of
        the two registrations Flask keeps."""
        return http_error(error)

    def _register_responses(self) -> None:
        """flask-smorest's default responses, each error described as problem+json."""
        from webapp.api.schemas import Problem

        for status in http.HTTPStatus:
            response: dict = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = Problem
            prepare_response(response, self.spec, PROBLEM_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An error (RFC 9457 problem)", "schema": Problem}
        prepare_response(response, self.spec, PROBLEM_TYPE)
        self.spec.components.response(self.DEFAULT_ERROR_RESPONSE_NAME, response, lazy=True)


API_SETTINGS = {
    "API_TITLE": "Keystone token API",
    "API_VERSION": "v1",
    "OPENAPI_VERSION": "3.1.0",
    "OPENAPI_URL_PREFIX": "/api/v1",
    "OPENAPI_JSON_PATH": "openapi.json",
    "API_SPEC_OPTIONS": {
        "info": {
            "description": (
                "Sign in an app, call the API with its access token (a JWT, ES256, "
                "keys at /.well-known/jwks.json), refresh it, sign out. Each app "
                "sign-in is a device on the owner's device page."
            )
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
        },
    },
}


def init_app(app: Flask) -> None:
    """Register the API's blueprints, its OpenAPI document and CORS."""
    from webapp.api import admin, docs, routes

    for key, value in API_SETTINGS.items():
        app.config.setdefault(key, value)
    api = KeystoneApi(app)
    api.register_blueprint(routes.blp)
    api.register_blueprint(admin.blp)
    app.register_blueprint(docs.bp)
    # Bearer tokens only, no cookies: there is no session to forge a request with.
    csrf.exempt(routes.blp)
    csrf.exempt(admin.blp)
    origins = app.config["API_CORS_ORIGINS"]
    if origins:
        CORS(
            app,
            resources={r"/api/*": {"origins": origins}},
            supports_credentials=False,
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["WWW-Authenticate", "Retry-After"],
            max_age=600,
        )
