"""Property-based API testing with schemathesis against the service's own OpenAPI schema.

Every operation is called with generated valid and invalid requests (bounded: a few examples
per operation, so this runs in CI in seconds).  No request may cause a 500, and every response
must match the schema: status code documented, content type documented, body valid.
Writes are sent with an API key; the rate limit is off (schemathesis sends many requests).
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

from rag.api.app import create_app  # noqa: E402
from support import indexed_pipeline  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

KEY = "schemathesis-write-key"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Known schema gaps in routes this suite does not own: the status-code check is skipped for
# them (no 500 and body/content-type conformance still hold).  Delete an entry once fixed.
KNOWN_UNDOCUMENTED_STATUS: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory):
    """The app over an indexed copy of the default corpus, built when the tests run (collecting
    this module builds nothing: the schema is read lazily, per test)."""
    base = tmp_path_factory.mktemp("schemathesis")
    pipeline = indexed_pipeline(base, api_keys=KEY, rate_limit="", log_json=False, max_upload_bytes=64 * 1024, max_body_bytes=128 * 1024)
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(pipeline.settings, pipeline, warm_up=False))


# Built inside the tests, not at import: schemathesis' lazy loader (schemathesis.pytest.from_fixture)
# fails on pytest 9 (4.32: "'Function' object has no attribute '_nodeid'"), so the operations
# are walked here, each with its own strategy of valid and invalid requests.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_api_conforms_to_its_schema(api_schema, mode, subtests):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 12, [op.label for op in operations]
    for operation in operations:
        with subtests.test(operation=operation.label):
            _conforms(operation, mode)


def _conforms(operation, mode: GenerationMode) -> None:
    checks = CHECKS
    if operation.label in KNOWN_UNDOCUMENTED_STATUS:
        checks = [c for c in CHECKS if c is not status_code_conformance]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
    def conforms(case):
        case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=checks)

    conforms()


def test_documents_workflow(api_schema):
    """Stateful: upload -> read -> delete sequences through the OpenAPI links of POST
    /v1/documents (bounded: a few short sequences), with the same checks; no step may answer 5xx."""

    class DocumentsWorkflow(api_schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case):
            return {"headers": {"Authorization": f"Bearer {KEY}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    DocumentsWorkflow.run(settings=settings(max_examples=8, stateful_step_count=4, deadline=None, derandomize=True,
                                            suppress_health_check=list(HealthCheck), database=None))
