"""Issue 20 item 13: nothing a client reads names a path on the server, and no redirect is
built from the client's Host header."""
from __future__ import annotations

from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.pipeline import Pipeline
from rag.settings import Settings
from test_security import make_client


def test_document_infos_name_files_not_server_paths(fake_pipeline):
    corpus = str(fake_pipeline.settings.corpus_dir.resolve())
    with make_client(fake_pipeline) as client:
        listing = client.get("/v1/documents")
        assert listing.status_code == 200
        documents = listing.json()["documents"]
        assert documents and all(d["source_path"] and not d["source_path"].startswith("/") for d in documents)
        assert corpus not in listing.text and str(fake_pipeline.settings.index_dir) not in listing.text
        assert any(d["source_path"].endswith(".md") or d["source_path"].endswith(".txt") for d in documents)
        detail = client.get(f"/v1/documents/{documents[0]['document_id']}")
        assert detail.status_code == 200 and corpus not in detail.text
        assert detail.json()["source_path"] == documents[0]["source_path"]


def test_not_ready_answers_do_not_name_the_index_folder(tmp_path):
    folder = tmp_path / "secret-folder-name"
    empty = Pipeline(Settings(index_dir=folder, embedding_model="hashing:64", reader="heuristic", rate_limit="", work_budget=""))
    with TestClient(create_app(empty.settings, empty), raise_server_exceptions=False) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "rag index" in ready.json()["detail"]
        ask = client.post("/v1/ask", json={"question": "Anything?"})
        chat = client.post("/v1/chat/completions", json={"model": "rag-default", "messages": [{"role": "user", "content": "Anything?"}]})
        listing = client.get("/v1/documents")
        for r in (ready, ask, chat):
            assert r.status_code == 503, r.text
        for r in (ready, ask, chat, listing):
            assert "secret-folder-name" not in r.text and str(tmp_path) not in r.text, r.text


def test_trailing_slash_redirect_is_not_built_from_the_host_header(fake_pipeline):
    with make_client(fake_pipeline) as client:
        r = client.get("/v1/documents/", headers={"Host": "evil.example"}, follow_redirects=False)
        assert r.status_code in (307, 308, 404)
        if r.status_code != 404:
            assert "evil.example" not in r.headers["location"]
            assert r.headers["location"] == "/v1/documents"
