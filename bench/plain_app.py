"""The yardstick: a plain Flask page rendering a Jinja template, nothing else.

`make bench` serves it with the same gunicorn settings as the app and
divides each scenario's throughput by this page's.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, render_template

HERE = Path(__file__).resolve().parent

app = Flask(__name__, template_folder=str(HERE / "templates"), static_folder=None)


@app.get("/")
def page():
    """Render a page of about the size and shape of the login page."""
    return render_template("plain.html", title="Log in", fields=["Username or email", "Password"])
