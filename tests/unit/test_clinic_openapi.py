"""docs/openapi.json is the schema the API serves; every error response is the JSON shape."""

from __future__ import annotations

import json
from pathlib import Path

from clinic import API_PREFIX, openapi_document
from veille.settings import Settings

DOCS = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
SCHEMA = json.loads(openapi_document(Settings()))


def test_committed_schema_is_current() -> None:
    assert DOCS.read_text() == openapi_document(Settings()), (
        "docs/openapi.json is stale: run `veille clinic openapi > docs/openapi.json`"
    )


def test_the_routes_of_the_issue_are_there() -> None:
    expected = {
        ("post", "/session"), ("delete", "/session"), ("get", "/me"), ("get", "/alerts"),
        ("get", "/alerts/{alert_id}"), ("post", "/alerts/{alert_id}/acknowledge"),
        ("post", "/alerts/{alert_id}/resolve"), ("get", "/patients/{pseudonym}/vitals"),
        ("get", "/patients/{pseudonym}/thresholds/{rule_id}"),
        ("put", "/patients/{pseudonym}/thresholds/{rule_id}"),
        ("delete", "/patients/{pseudonym}/thresholds/{rule_id}"), ("get", "/health"),
        # The live page's additions (issue 5, part 2): event stream, NEWS2, FHIR export.
        ("get", "/alerts/stream"), ("get", "/news2"), ("get", "/patients/{pseudonym}/fhir"),
        # Issue 13, part 4: the care team's view of who the patient is.
        ("get", "/patients/{pseudonym}/identity"), ("get", "/identities"),
    }  # fmt: skip
    served = {(m, p.removeprefix(API_PREFIX)) for p, ops in SCHEMA["paths"].items() for m in ops}
    assert served == expected


def test_every_error_response_is_the_error_model() -> None:
    for path, operations in SCHEMA["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorResponse"), (method, path, status)
