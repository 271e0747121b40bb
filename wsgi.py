"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import gc

from webapp import create_app

app = create_app()
gc.freeze()
