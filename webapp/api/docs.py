"""The API's public documents: the JWKS and the Swagger UI page for the OpenAPI document.

Swagger UI's files come from the pinned flask-swagger-ui package (its
`dist`, Swagger UI 5, which reads OpenAPI 3.1) and are served by the app,
so the page works under our CSP (`script-src 'self'`): no CDN, and the one
script of our own is a file (static/js/api-docs.js), not inline.
"""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, jsonify, render_template, send_from_directory

from webapp.errors import problem
from webapp.security import access_tokens

bp = Blueprint("api_docs", __name__)

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
SWAGGER_UI_FILES = {"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"}


@bp.get("/.well-known/jwks.json")
def jwks():
    """The public keys that verify access tokens (the current one and retired ones)."""
    response = jsonify(access_tokens.jwks())
    # Keys change only on rotation; other services may keep them a few minutes.
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@bp.get("/api/docs")
def docs():
    """The OpenAPI document, rendered by Swagger UI."""
    return render_template("api/docs.html")


@bp.get("/api/docs/assets/<name>")
def docs_asset(name: str):
    """Swagger UI's own files, from the pinned package."""
    if name not in SWAGGER_UI_FILES:
        return problem(404)
    return send_from_directory(SWAGGER_UI_DIST, name, max_age=86400)
