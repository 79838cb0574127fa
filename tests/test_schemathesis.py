"""Property-based API testing with schemathesis against the service's own OpenAPI schema.

Every operation is called with generated valid and invalid requests (bounded: a few examples
per operation, so this runs in CI in seconds).  No request may cause a 500, and every response
must match the schema: status code documented, content type documented, body valid.
Writes are sent with an API key; the rate limit is off (schemathesis sends many requests).
"""
from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

from rag.api.app import create_app  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402
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


CORPUS = Path(__file__).resolve().parent.parent / "corpus"
_BASE = Path(tempfile.mkdtemp(prefix="rag-schemathesis-"))
atexit.register(shutil.rmtree, _BASE, ignore_errors=True)
# The app exists at import (schemathesis reads its schema when it collects the tests); the
# index is built only when the tests run (fixture below), never at collection.
_PIPELINE = Pipeline(Settings(index_dir=_BASE / "index", corpus_dir=CORPUS, embedding_model="hashing:256", reader="heuristic",
                              api_keys=KEY, rate_limit="", log_json=False, max_upload_bytes=64 * 1024, max_body_bytes=128 * 1024))
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_PIPELINE.settings, _PIPELINE, warm_up=False))


@pytest.fixture(scope="module", autouse=True)
def _indexed():
    corpus = _BASE / "corpus"
    if not corpus.exists():
        shutil.copytree(CORPUS, corpus)
        _PIPELINE.warm_up()
        _PIPELINE.index_paths([corpus])


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)
def test_api_conforms_to_its_schema(case):
    checks = CHECKS
    if case.operation.label in KNOWN_UNDOCUMENTED_STATUS:
        checks = [c for c in CHECKS if c is not status_code_conformance]
    case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"}, checks=checks)


# Stateful: upload -> read -> delete sequences through the OpenAPI links of POST /v1/documents
# (bounded: a few short sequences), with the same checks; no step may answer 5xx.
class DocumentsWorkflow(schema.as_state_machine()):
    def get_call_kwargs(self, case):
        return {"headers": {"Authorization": f"Bearer {KEY}"}}

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)


DocumentsWorkflow.TestCase.settings = settings(max_examples=8, stateful_step_count=4, deadline=None, derandomize=True,
                                               suppress_health_check=list(HealthCheck), database=None)
TestStatefulDocuments = DocumentsWorkflow.TestCase
