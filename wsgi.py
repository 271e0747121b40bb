"""The WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import gc

from webapp import create_app, warm_up

app = create_app()
warm_up(app)

# Garbage collection tuned for a server process: what start-up made lives as
# long as the process, so it leaves the collector's view (`freeze`: full
# collections no longer walk it), and the youngest generation is collected
# after 50,000 new objects rather than 700 (a device page makes thousands of
# short-lived objects, almost none of them in reference cycles).
gc.freeze()
gc.set_threshold(50_000, 20, 20)
