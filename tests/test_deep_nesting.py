"""Issue 20 item 11: deeply nested input is a client error, never a 500 (RecursionError)."""
from __future__ import annotations

import pytest

from rag.ingest import document_from_bytes
from support import column, make_pdf
from test_security import make_client

DEEP = b"[" * 100_000


@pytest.mark.parametrize("path", ["/v1/documents", "/v1/chat/completions", "/v1/ask"])
def test_a_deeply_nested_json_body_is_400(fake_pipeline, path):
    with make_client(fake_pipeline) as client:
        r = client.post(path, content=DEEP, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (r.status_code, r.text[:200])
        assert "nested" in r.text or path == "/v1/ask"
        # and wrapped in an object, where the route reads one
        r = client.post(path, content=b'{"messages": ' + DEEP, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (r.status_code, r.text[:200])


@pytest.mark.parametrize("key", ["Title", "Nested"])
def test_a_pdf_with_a_deeply_nested_info_dictionary_is_read(key):
    # make_pdf writes "<< /Title (TITLE) >>": this closes the string and adds a 100,000-deep array
    nested = f") /{key} " + "[" * 100_000 + "]" * 100_000 + " /Other ("
    pdf = make_pdf([column(72, 700, ["The beacon at the harbour is blue and stands near the wall."])], title=nested)
    document = document_from_bytes("nested.pdf", pdf)
    assert "beacon at the harbour is blue" in document.text
