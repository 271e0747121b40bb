"""The speed code of the hot paths, in one place: each piece replaces a library's own way.

Everything here does what a library would do, with less work, on the paths
that run at every request: the signed-in read, the remember-cookie sign-in,
the session cookie and the CSRF token. Each module says what it replaces,
and a test holds it to what the library itself produces. What each piece
bought (and what the pieces removed in issue 24 cost) is in
`bench/RESULTS.md`; what they rely on of each library, in
`docs/UPGRADING.md`.

- `rows` replaces ORM loading of a device, its user and role: one select of
  the three tables, the instances built with public APIs and adopted by the
  request's session (`extensions.adopt`). Test: `tests/test_speedups.py`.
- `prepared` replaces SQLAlchemy's execution (and its `Connection`) for
  the hot paths' few fixed statements: the signed-in read, the remember
  sign-in's read and rotation. Test: `tests/test_prepared.py`.
- `sessions` replaces Flask's `SecureCookieSessionInterface`: a verified
  cookie remembered, the serializer and its key built once. Test:
  `tests/test_session_cookie.py`.
- `signing` replaces itsdangerous's per-call signer set-up, for sessions and
  CSRF tokens. Tests: `tests/test_session_cookie.py`, `tests/test_csrf_tokens.py`.
- `csrf` replaces Flask-WTF's `generate_csrf` (the forms' CSRF class is on
  public APIs). Test: `tests/test_csrf_tokens.py`.

The signed-in read and the remember sign-in themselves (which statements,
on which connection, when to commit) are in `security/devices.py`.
"""
