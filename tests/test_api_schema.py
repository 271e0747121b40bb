"""Schemathesis fuzzes the token API from its own OpenAPI document.

Every operation gets generated requests (a bounded number, so the suite
stays fast), as an admin with a second factor so that most reach their
view: no answer may be a 5xx, and every answer must conform to the
document (status code, content type, headers, body schema).

The operations are walked in one test with Hypothesis's `given`:
schemathesis's pytest fixture loader does not run under pytest 9.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from tests.test_api import sign_in_app

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]
EXAMPLES = 6


def test_the_api_conforms_to_its_document(app, make_user):
    make_user("root", role="admin")
    client = app.test_client()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    for operation in operations:
        # A token of its own: an earlier operation may have signed the last one out.
        token = sign_in_app(client, "root", device_name="Schemathesis")["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def conforms(case):
            case.call_and_validate(headers=conforms.headers, checks=CHECKS)

        conforms.headers = headers  # bound now, not read from the loop's variable later
        conforms()
