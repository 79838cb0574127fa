"""HTTP API over the fake pipeline: shapes, documents lifecycle, and 4xx (never 500) on bad input."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from support import assert_offsets
from rag.api.app import create_app
from rag.pipeline import Pipeline


@pytest.fixture
def client(fake_pipeline) -> TestClient:
    # A loopback server address and X-Requested-With, as a local script: keyless writes are
    # accepted only so (rag/api/security.py, rag/api/write_guard.py).
    with TestClient(create_app(fake_pipeline.settings, fake_pipeline), raise_server_exceptions=False,
                    base_url="http://127.0.0.1:8000", headers={"X-Requested-With": "pytest"}) as c:
        yield c


def _docs(client) -> dict[str, str]:
    return {d["document_id"]: client.get(f"/v1/documents/{d['document_id']}").json()["text"] for d in client.get("/v1/documents").json()["documents"]}


def test_ask_response_shape_and_offsets(client):
    r = client.post("/v1/ask", json={"question": "Who was NATO's first Secretary General?", "top_k": 3})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"question", "answers", "passages", "no_answer", "timings_ms"}
    answer = body["answers"][0]
    assert "Lord Hastings Lionel Ismay" in answer["text"]
    assert set(answer["citation"]) >= {"document_id", "title", "paragraph_index", "paragraph_text", "answer_start", "answer_end", "doc_start", "doc_end"}
    assert len(body["passages"]) == 3
    assert set(body["passages"][0]["scores"]) == {"bm25", "dense", "fused"}
    assert_offsets(body, _docs(client))


def test_abstention_shape(client):
    body = client.post("/v1/ask", json={"question": "What is the capital of Australia?"}).json()
    assert body["answers"] == [] and "reason" in body["no_answer"]


def test_search(client):
    r = client.post("/v1/search", json={"query": "Ismay", "mode": "bm25", "top_k": 2})
    assert r.status_code == 200
    assert len(r.json()["passages"]) <= 2
    assert "Ismay" in r.json()["passages"][0]["text"]


def test_health_and_readiness(client, tmp_path):
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/readyz").status_code == 200
    from rag.settings import Settings

    empty = Pipeline(Settings(index_dir=tmp_path / "none", embedding_model="hashing:64", reader="heuristic"))
    with TestClient(create_app(empty.settings, empty)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and "rag index" in r.json()["detail"]
        assert c.post("/v1/ask", json={"question": "Anything?"}).status_code == 503


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/ask", "/v1/search", "/v1/documents", "/v1/documents/{document_id}", "/healthz", "/readyz"} <= set(paths)


def test_document_lifecycle_changes_answers(client):
    question = {"question": "What colour is the zorblax beacon?"}
    assert client.post("/v1/ask", json=question).json()["answers"] == []
    r = client.post("/v1/documents", json={"document_id": "zorblax", "title": "Zorblax Facts", "text": "The zorblax beacon is colour Ultramarine Blue, say Zorblax engineers."})
    assert r.status_code == 201, r.text
    assert r.json()["added"] == ["zorblax"]
    body = client.post("/v1/ask", json=question).json()
    assert body["answers"][0]["citation"]["document_id"] == "zorblax"
    assert body["answers"][0]["citation"]["title"] == "Zorblax Facts"
    # upsert by id replaces
    r = client.post("/v1/documents", json={"document_id": "zorblax", "text": "The zorblax beacon is colour Crimson Red, say Zorblax engineers."})
    assert r.json()["updated"] == ["zorblax"]
    assert "Crimson" in client.post("/v1/ask", json=question).json()["answers"][0]["citation"]["paragraph_text"]
    assert client.delete("/v1/documents/zorblax").status_code == 200
    assert "zorblax" not in [d["document_id"] for d in client.get("/v1/documents").json()["documents"]]
    assert client.delete("/v1/documents/zorblax").status_code == 404
    assert client.get("/v1/documents/zorblax").status_code == 404


def test_file_upload(client):
    files = {"file": ("Field Notes.md", b"# Field Notes\nThe quokka colony lives on Rottnest Island, rangers report.", "text/markdown")}
    r = client.post("/v1/documents", files=files, data={"author": "A. Ranger"})
    assert r.status_code == 201, r.text
    assert r.json()["document_ids"] == ["field-notes"]
    doc = client.get("/v1/documents/field-notes").json()
    assert doc["author"] == "A. Ranger" and doc["title"] == "Field Notes"
    assert doc["paragraphs"][0]["text"] == doc["text"][doc["paragraphs"][0]["doc_start"] : doc["paragraphs"][0]["doc_end"]]
    body = client.post("/v1/ask", json={"question": "Where does the quokka colony live?"}).json()
    assert body["answers"] and body["answers"][0]["citation"]["document_id"] == "field-notes"


BAD_ASKS = [
    {"question": ""},
    {"question": "   \n\t "},
    {"question": "x" * 5000},
    {"question": 42},
    {"question": None},
    {"question": ["a"]},
    {},
    {"question": "ok?", "top_k": 0},
    {"question": "ok?", "top_k": 101},
    {"question": "ok?", "top_k": "many"},
    {"question": "ok?", "mode": "fuzzy"},
    {"question": "ok?", "unexpected": 1},
    [],
    "just a string",
]


@pytest.mark.parametrize("payload", BAD_ASKS)
def test_bad_ask_requests_get_422(client, payload):
    r = client.post("/v1/ask", json=payload)
    assert r.status_code == 422, r.text
    assert r.json()["detail"]


@pytest.mark.parametrize(
    "raw, content_type",
    [(b"{not json", "application/json"), (b"", "application/json"), (b"\xff\xfe", "application/json"),
     (b"\x80", "application/json"), (b"\x00" * 13, "application/json"), (b"question=hi", "application/x-www-form-urlencoded")],
)
def test_malformed_bodies_are_4xx(client, raw, content_type):
    for path in ("/v1/ask", "/v1/search", "/v1/documents"):
        r = client.post(path, content=raw, headers={"content-type": content_type})
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)


@pytest.mark.parametrize(
    "kwargs, status",
    [
        ({"files": {"file": ("evil.exe", b"MZ", "application/octet-stream")}}, 415),
        ({"files": {"file": ("empty.txt", b"   ", "text/plain")}}, 415),
        ({"files": {"file": ("latin.txt", "caf\xe9".encode("latin-1"), "text/plain")}}, 415),
        ({"files": {"other": ("a.txt", b"text", "text/plain")}}, 422),
        ({"json": {"text": "no id or title"}}, 422),
        ({"json": {"document_id": "x"}}, 422),
        ({"json": {"document_id": "x", "text": ""}}, 422),
        ({"json": {"document_id": "x", "text": 5}}, 422),
        ({"content": b"{broken", "headers": {"content-type": "application/json"}}, 422),
        ({"content": b"text", "headers": {"content-type": "text/plain"}}, 415),
    ],
)
def test_bad_uploads(client, kwargs, status):
    r = client.post("/v1/documents", **kwargs)
    assert r.status_code == status, r.text
    assert r.json()["detail"]
