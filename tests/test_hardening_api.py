"""Issue 11, HTTP API: cross-site writes, the loopback exemption, 415s, docs behind read auth,
remaining 500s (empty BM25 vocabulary, surrogates, full disk) and cost-aware limits."""
from __future__ import annotations

import errno

import pytest
from fastapi.testclient import TestClient

from rag.pipeline import Pipeline
from rag.settings import Settings
from test_security import READ_KEY, WRITE_KEY, bearer, make_client

DOC = {"document_id": "zorblax", "text": "The zorblax beacon is colour Ultramarine Blue, say Zorblax engineers."}
TARGET = "korea-2024-nato-summit"


def _text(client, document_id: str) -> str:
    return client.get(f"/v1/documents/{document_id}").json()["text"]


# ----------------------------------------------------------------------- item 5: cross-site writes
def test_cross_site_form_posts_are_refused(fake_pipeline):
    """What a page of another site can send without a preflight: multipart or a typeless Blob."""
    with make_client(fake_pipeline, browser=True) as client:
        before = _text(client, TARGET)
        evil = {"Origin": "https://evil.example"}
        r = client.post("/v1/documents", files={"file": ("x.txt", b"Overwritten by a web page.")}, data={"document_id": TARGET}, headers=evil)
        assert r.status_code == 403 and "cross-site" in r.json()["detail"]
        # a Blob without a type: no Content-Type (it used to be read as JSON and overwrote the document)
        r = client.post("/v1/documents", content=b'{"document_id": "%s", "text": "Overwritten."}' % TARGET.encode(), headers=evil)
        assert r.status_code == 415
        r = client.post("/v1/documents", content=b'{"document_id": "x", "text": "t"}', headers={**evil, "Content-Type": "text/plain"})
        assert r.status_code == 415
        # a foreign Origin is refused even for JSON (a CORS-allowed page could send it)
        assert client.post("/v1/documents", json=DOC, headers=evil).status_code == 403
        assert client.post("/v1/documents", json=DOC, headers={"Origin": "null"}).status_code == 403
        # no Origin (an old browser's form post) and no proof: refused
        r = client.post("/v1/documents", files={"file": ("x.txt", b"Overwritten.")}, data={"document_id": TARGET})
        assert r.status_code == 403 and "X-Requested-With" in r.json()["detail"]
        # the refusal names the header and gives a command that works when pasted (issue 21)
        assert "curl -H 'X-Requested-With: curl' -F file=@notes.txt http://" in r.json()["detail"]
        assert r.json()["detail"].split("-F file=@notes.txt ")[1].split(" ")[0].endswith("/v1/documents")
        assert _text(client, TARGET) == before


def test_keyless_writes_with_a_non_simple_proof_are_accepted(fake_pipeline):
    with make_client(fake_pipeline, browser=True) as client:
        upload = {"files": {"file": ("n.txt", b"The zorblax beacon is blue.")}}
        assert client.post("/v1/documents", **upload, data={"document_id": "a"}, headers={"X-Requested-With": "curl"}).status_code == 201
        # the service's own page (any loopback name on the port the connection came in on)
        for origin in ("http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"):
            assert client.post("/v1/documents", **upload, data={"document_id": "b"}, headers={"Origin": origin}).status_code == 201, origin
        assert client.post("/v1/documents", **upload, data={"document_id": "c"}, headers={"Origin": "http://localhost:9999"}).status_code == 403
        assert client.post("/v1/documents", json={**DOC, "document_id": "d"}).status_code == 201  # JSON needs a preflight
        assert client.delete("/v1/documents/d").status_code == 200  # so does DELETE
    with make_client(fake_pipeline, browser=True, public_url="https://qa.example.org") as client:
        r = client.post("/v1/documents", **upload, data={"document_id": "e"}, headers={"Origin": "https://qa.example.org"})
        assert r.status_code == 201


def test_a_key_is_proof_enough(fake_pipeline):
    with make_client(fake_pipeline, browser=True, api_keys=WRITE_KEY) as client:
        upload = {"files": {"file": ("n.txt", b"The zorblax beacon is blue.")}}
        assert client.post("/v1/documents", **upload, headers={**bearer(WRITE_KEY), "Origin": "https://app.example"}).status_code == 201
        assert client.post("/v1/documents", **upload, headers={"X-Requested-With": "x"}).status_code == 401


def test_question_posts_need_json(fake_pipeline):
    with make_client(fake_pipeline, browser=True) as client:
        body = b'{"question": "Who was NATO\'s first Secretary General?"}'
        assert client.post("/v1/ask", content=body, headers={"Content-Type": "application/json; charset=utf-8"}).status_code == 200
        for headers in ({}, {"Content-Type": "text/plain"}, {"Content-Type": "application/x-www-form-urlencoded"}):
            assert client.post("/v1/ask", content=body, headers=headers).status_code == 415
        chat = b'{"model": "rag-default", "messages": [{"role": "user", "content": "hi"}]}'
        assert client.post("/v1/chat/completions", content=chat, headers={"Content-Type": "text/plain"}).status_code == 415
        spec = client.get("/openapi.json").json()
        assert {"408", "415"} <= set(spec["paths"]["/v1/documents"]["post"]["responses"])


# ------------------------------------------------------------- item 6: the socket, not the setting
def test_loopback_exemption_checks_the_socket(fake_pipeline):
    """RAG_HOST says 127.0.0.1 (the default) but the connection came in on 10.1.2.3 (uvicorn
    --host 0.0.0.0 with RAG_HOST unset): keyless writes are refused."""
    assert fake_pipeline.settings.host == "127.0.0.1"
    with make_client(fake_pipeline, base_url="http://10.1.2.3:8000") as client:
        r = client.post("/v1/documents", json=DOC)
        assert r.status_code == 403 and "RAG_API_KEYS is not set" in r.json()["detail"]
        assert client.delete(f"/v1/documents/{TARGET}").status_code == 403
        assert client.post("/v1/ask", json={"question": "What colour is the zorblax beacon?"}).status_code == 200
    with make_client(fake_pipeline, base_url="http://10.1.2.3:8000", api_keys=WRITE_KEY) as client:
        assert client.post("/v1/documents", json=DOC, headers=bearer(WRITE_KEY)).status_code == 201


# ------------------------------------------------------------------- item 9: docs behind read auth
@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/"])
def test_docs_and_page_need_a_read_key_when_reads_do(fake_pipeline, path):
    with make_client(fake_pipeline, api_keys=WRITE_KEY, read_api_keys=READ_KEY, require_auth_for_reads=True) as client:
        r = client.get(path)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert client.get(path, headers=bearer("wrong")).status_code == 401
        assert client.get(path, headers=bearer(READ_KEY)).status_code == 200
        assert client.get("/healthz").status_code == 200
    with make_client(fake_pipeline) as client:
        assert client.get(path).status_code == 200


# ------------------------------------------------------------------------------- item 7: the 500s
def test_documents_without_indexable_words(fake_pipeline, tmp_path):
    """bm25s cannot index an empty vocabulary: upload into an empty index, and a delete that
    leaves only such documents, answered 500."""
    settings = Settings(**{**fake_pipeline.settings.model_dump(), "index_dir": tmp_path / "empty", "rate_limit": "", "log_json": False})
    empty = Pipeline(settings, encoder=fake_pipeline.encoder, reader=fake_pipeline.reader)
    empty.warm_up()
    from rag.api.app import create_app

    with TestClient(create_app(settings, empty, warm_up=False), base_url="http://127.0.0.1:8000") as client:
        r = client.post("/v1/documents", json={"document_id": "x", "text": "A. B. C. 1 2 3"})
        assert r.status_code == 201, r.text
        assert client.post("/v1/ask", json={"question": "What is A?", "mode": "bm25"}).status_code == 200
        assert client.post("/v1/documents", json=DOC).status_code == 201
        assert client.delete("/v1/documents/zorblax").status_code == 200  # leaves an empty vocabulary
        assert client.post("/v1/search", json={"query": "zorblax"}).status_code == 200
    reopened = Pipeline(settings, encoder=fake_pipeline.encoder, reader=fake_pipeline.reader)
    reopened.warm_up()  # the saved empty-vocabulary index loads
    assert [d["document_id"] for d in reopened.documents()] == ["x"]


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/ask:batch", '{"questions": ["who \\ud800"]}'),
        ("/v1/ask:batch", '{"questions": ["fine", "\\udc00 x"]}'),
        ("/v1/search:batch", '{"queries": ["who \\ud800"]}'),
        ("/v1/ask", '{"question": "who \\ud800"}'),
        ("/v1/documents", '{"document_id": "s", "text": "bad \\ud800 text"}'),
    ],
)
def test_unpaired_surrogates_are_422(fake_pipeline, path, body):
    with make_client(fake_pipeline) as client:
        r = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text


def test_full_disk_is_503_with_retry_after(fake_pipeline, monkeypatch):
    with make_client(fake_pipeline) as client:
        pipeline = client.app.state.pipeline

        def disk_full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(pipeline, "upsert_documents", disk_full)
        monkeypatch.setattr(pipeline, "delete_document", disk_full)
        r = client.post("/v1/documents", json=DOC)
        assert r.status_code == 503 and int(r.headers["retry-after"]) > 0 and "disk is full" in r.json()["detail"]
        assert client.delete(f"/v1/documents/{TARGET}").status_code == 503
        monkeypatch.setattr(pipeline, "upsert_documents", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
        assert client.post("/v1/documents", json=DOC).status_code == 500  # other OS errors stay server errors


# ----------------------------------------------------------------------- item 8: cost-aware limits
def test_batch_size_and_characters_are_limited(fake_pipeline):
    with make_client(fake_pipeline, max_batch_questions=3, max_batch_chars=100) as client:
        assert client.post("/v1/ask:batch", json={"questions": ["Who?"] * 3}).status_code == 200
        r = client.post("/v1/ask:batch", json={"questions": ["Who?"] * 4})
        assert r.status_code == 413 and "RAG_MAX_BATCH_QUESTIONS" in r.json()["detail"]
        r = client.post("/v1/search:batch", json={"queries": ["x" * 60, "y" * 60]})
        assert r.status_code == 413 and "RAG_MAX_BATCH_CHARS" in r.json()["detail"]


def test_work_budget_charges_by_question(fake_pipeline):
    # reader_top_k 3: a question costs 4 units, a search query 1; 20 units a minute
    with make_client(fake_pipeline, work_budget="20/minute", reader_top_k=3) as client:
        r = client.post("/v1/ask:batch", json={"questions": ["Who leads NATO?"] * 6})  # 24 units
        assert r.status_code == 429 and "more than the whole budget" in r.json()["detail"]
        assert client.post("/v1/ask:batch", json={"questions": ["Who leads NATO?"] * 4}).status_code == 200  # 16
        assert client.post("/v1/search", json={"query": "NATO"}).status_code == 200  # 17
        r = client.post("/v1/ask", json={"question": "Who leads NATO?"})  # 21 > 20
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1 and "RAG_WORK_BUDGET" in r.json()["detail"]
        chat = {"model": "rag-default", "messages": [{"role": "user", "content": "Who leads NATO?"}]}
        r = client.post("/v1/chat/completions", json=chat)
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded" and r.headers["retry-after"]
        assert client.post("/v1/search:batch", json={"queries": ["a", "b", "c"]}).status_code == 200  # 20
        assert client.get("/v1/documents").status_code == 200  # reading the list costs no work
        assert client.get("/healthz").status_code == 200


def test_forwarded_for_is_trusted_only_from_configured_proxies(fake_pipeline):
    def spoofed(client, address):
        return client.get("/v1/documents", headers={"X-Forwarded-For": address}).status_code

    with make_client(fake_pipeline, rate_limit="2/minute") as direct:
        with TestClient(direct.app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 5000)) as client:
            assert [spoofed(client, f"203.0.113.{i}") for i in range(4)] == [200, 200, 429, 429]
    with make_client(fake_pipeline, rate_limit="2/minute", trusted_proxies="127.0.0.1, 10.0.0.0/8") as direct:
        with TestClient(direct.app, base_url="http://127.0.0.1:8000", client=("127.0.0.1", 5000)) as proxy:
            assert [spoofed(proxy, "203.0.113.1") for _ in range(3)] == [200, 200, 429]
            assert spoofed(proxy, "203.0.113.2") == 200  # another client behind the proxy
            # the right-most hop not ours is the client; what it wrote to the left is ignored
            assert spoofed(proxy, "198.51.100.7, 203.0.113.1, 10.0.0.3") == 429
        with TestClient(direct.app, base_url="http://127.0.0.1:8000", client=("192.0.2.9", 5000)) as stranger:
            assert [spoofed(stranger, f"203.0.113.{50 + i}") for i in range(3)] == [200, 200, 429]


def test_bad_trusted_proxies_fail_at_start(fake_pipeline):
    with pytest.raises(ValueError, match="RAG_TRUSTED_PROXIES"):
        make_client(fake_pipeline, trusted_proxies="not-an-address")
    with pytest.raises(ValueError, match="RAG_WORK_BUDGET"):
        make_client(fake_pipeline, work_budget="plenty")
