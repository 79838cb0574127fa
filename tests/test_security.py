"""API keys (401/403, constant-time comparison), CORS, and ids/file names that never reach a path."""
from __future__ import annotations

import hmac
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.api import security
from rag.api.app import create_app
from rag.pipeline import Pipeline
from rag.settings import Settings

WRITE_KEY = "write-key-0123456789"
READ_KEY = "read-key-9876543210"
DOC = {"document_id": "zorblax", "text": "The zorblax beacon is colour Ultramarine Blue, say Zorblax engineers."}


# What the in-process client presents: the server's address (scope["server"]) is loopback, as
# for `rag serve` on 127.0.0.1, and every request carries X-Requested-With like a script would,
# so keyless writes are allowed; tests of the cross-site rules pass browser=True.
LOOPBACK = "http://127.0.0.1:8000"
SCRIPT_HEADERS = {"X-Requested-With": "pytest"}


def make_client(fake_pipeline: Pipeline, browser: bool = False, base_url: str = LOOPBACK, **overrides) -> TestClient:
    """A client for an app over the fake pipeline's index with some settings changed.

    ``browser=True``: no X-Requested-With, so requests look like what a web page can send."""
    settings = Settings(**{**fake_pipeline.settings.model_dump(), "rate_limit": "", "work_budget": "", "log_json": False, **overrides})
    pipeline = Pipeline(settings, encoder=fake_pipeline.encoder, reader=fake_pipeline.reader)
    pipeline.warm_up()
    headers = {} if browser else SCRIPT_HEADERS
    return TestClient(create_app(settings, pipeline, warm_up=False), raise_server_exceptions=False, base_url=base_url, headers=headers)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def keyed(fake_pipeline) -> TestClient:
    with make_client(fake_pipeline, api_keys=WRITE_KEY, read_api_keys=READ_KEY) as client:
        yield client


@pytest.mark.parametrize(
    "method, path, needed",
    [
        ("GET", "/healthz", "public"),
        ("GET", "/readyz", "public"),
        ("GET", "/", "read"),
        ("GET", "/openapi.json", "read"),
        ("GET", "/docs", "read"),
        ("GET", "/static/app.js", "public"),
        ("GET", "/v1/documents", "read"),
        ("GET", "/metrics", "read"),
        ("POST", "/v1/ask", "read"),
        ("POST", "/v1/ask:batch", "read"),
        ("POST", "/v1/search", "read"),
        ("POST", "/v1/chat/completions", "read"),
        ("POST", "/v1/documents", "write"),
        ("DELETE", "/v1/documents/x", "write"),
        ("POST", "/v1/index", "write"),
        ("POST", "/v1/asking-for-trouble", "write"),  # only the path segment /v1/ask is a read
        ("PUT", "/v1/anything-new", "write"),  # default deny: a new mutating route needs a key
    ],
)
def test_access_needed(method, path, needed):
    assert security.access_needed(method, path) == needed


def test_writes_need_a_write_key(keyed):
    r = keyed.post("/v1/documents", json=DOC)
    assert r.status_code == 401
    assert "API key" in r.json()["detail"] and r.headers["www-authenticate"].startswith("Bearer")
    r = keyed.post("/v1/documents", json=DOC, headers=bearer("not-a-key"))
    assert r.status_code == 401 and r.json()["detail"] == "invalid API key"
    r = keyed.post("/v1/documents", json=DOC, headers={"Authorization": f"Basic {WRITE_KEY}"})
    assert r.status_code == 401
    r = keyed.post("/v1/documents", json=DOC, headers=bearer(READ_KEY))
    assert r.status_code == 403 and "only read" in r.json()["detail"]
    assert keyed.delete("/v1/documents/nato-indo-pacific-pivot").status_code == 401
    assert keyed.delete("/v1/documents/nato-indo-pacific-pivot", headers=bearer(READ_KEY)).status_code == 403
    ids = [d["document_id"] for d in keyed.get("/v1/documents").json()["documents"]]
    assert ids == ["korea-2024-nato-summit", "nato-indo-pacific-pivot"]  # nothing changed

    r = keyed.post("/v1/documents", json=DOC, headers=bearer(WRITE_KEY))
    assert r.status_code == 201 and r.json()["added"] == ["zorblax"]
    assert keyed.delete("/v1/documents/zorblax", headers=bearer(WRITE_KEY)).status_code == 200


def test_reads_are_open_by_default_even_with_keys(keyed):
    assert keyed.post("/v1/ask", json={"question": "Who was NATO's first Secretary General?"}).status_code == 200
    assert keyed.get("/v1/documents").status_code == 200
    # OpenAI SDKs always send some key: an unknown one is ignored while reads are open
    assert keyed.get("/v1/documents", headers=bearer("sk-whatever")).status_code == 200


def test_reads_can_require_a_key(fake_pipeline):
    with make_client(fake_pipeline, api_keys=WRITE_KEY, read_api_keys=READ_KEY, require_auth_for_reads=True) as client:
        question = {"question": "Who was NATO's first Secretary General?"}
        r = client.post("/v1/ask", json=question)
        assert r.status_code == 401 and "needs an API key for reads" in r.json()["detail"]
        assert client.post("/v1/ask", json=question, headers=bearer("wrong")).status_code == 401
        assert client.post("/v1/ask", json=question, headers=bearer(READ_KEY)).status_code == 200
        assert client.post("/v1/ask", json=question, headers=bearer(WRITE_KEY)).status_code == 200
        assert client.get("/v1/documents").status_code == 401
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=bearer(READ_KEY)).status_code == 200
        # probes and the page shell stay public
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200


def test_reads_with_auth_need_some_key(fake_pipeline):
    with pytest.raises(ValueError, match="RAG_API_KEYS"):
        make_client(fake_pipeline, require_auth_for_reads=True)


def test_without_keys_writes_are_local_only(fake_pipeline):
    # loopback (the default host): local use without keys, as before
    with make_client(fake_pipeline) as client:
        assert client.post("/v1/documents", json=DOC).status_code == 201
    # reachable from the network and no key: every write refused, reads still answered
    with make_client(fake_pipeline, host="0.0.0.0") as client:
        r = client.post("/v1/documents", json={**DOC, "document_id": "other"})
        assert r.status_code == 403 and "RAG_API_KEYS is not set" in r.json()["detail"]
        assert client.delete("/v1/documents/zorblax").status_code == 403
        assert client.post("/v1/ask", json={"question": "What colour is the zorblax beacon?"}).status_code == 200


def test_a_new_mutating_route_is_protected_by_default(fake_pipeline):
    with make_client(fake_pipeline, api_keys=WRITE_KEY) as client:

        @client.app.post("/v1/reindex")
        def reindex() -> dict:
            return {"ok": True}

        assert client.post("/v1/reindex").status_code == 401
        assert client.post("/v1/reindex", headers=bearer(WRITE_KEY)).json() == {"ok": True}


def test_keys_are_compared_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    ring = security.KeyRing.from_settings(Settings(api_keys="k1, k2,k3", read_api_keys="r1"))
    for token in ("k1", "k3", "r1", "nope", "x" * 10_000):
        calls.clear()
        ring.role_of(token)
        # every configured key is compared, whichever matches (no early exit), on equal-length digests
        assert calls == [(32, 32)] * 4
    assert [ring.role_of(t) for t in ("k1", "k2", "k3", "r1", "nope", "")] == ["write", "write", "write", "read", None, None]
    assert "k1" not in repr(Settings(api_keys="k1"))  # keys never show up in logs of the settings


def test_openapi_documents_the_key(keyed):
    spec = keyed.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["APIKey"]["scheme"].lower() == "bearer"
    post = spec["paths"]["/v1/documents"]["post"]["responses"]
    assert {"401", "403", "413", "429"} <= set(post)
    assert {"401", "403"} <= set(spec["paths"]["/v1/documents/{document_id}"]["delete"]["responses"])


def test_cors_is_closed_by_default(fake_pipeline):
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    with make_client(fake_pipeline) as client:
        r = client.get("/v1/documents", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
        assert "access-control-allow-origin" not in client.options("/v1/ask", headers=preflight).headers
    with make_client(fake_pipeline, cors_origins="https://app.example, https://other.example") as client:
        ok = client.options("/v1/ask", headers={**preflight, "Origin": "https://app.example", "Access-Control-Request-Headers": "authorization"})
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://app.example"
        r = client.get("/v1/documents", headers={"Origin": "https://app.example"})
        assert r.headers["access-control-allow-origin"] == "https://app.example"
        assert "x-request-id" in r.headers["access-control-expose-headers"].lower()
        assert "access-control-allow-origin" not in client.get("/v1/documents", headers={"Origin": "https://evil.example"}).headers


def _outside(root: Path, index_dir: Path) -> set[str]:
    """Every path under ``root`` outside the index folder (the walk never enters the index,
    whose segment folders compaction may add and remove meanwhile)."""
    import os

    found: set[str] = set()
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if Path(folder, d) != index_dir]
        found.update(str(Path(folder, name).relative_to(root)) for name in subfolders + files)
    return found


@pytest.mark.parametrize(
    "filename, document_id",
    [
        ("../../../escape.txt", None),
        ("/etc/passwd.txt", None),
        ("..\\..\\windows.txt", None),
        ("notes.txt", "../../../escape"),
        ("notes.txt", "/absolute/path"),
        ("notes.txt", "..%2F..%2Fencoded"),
        ("notes.txt", "a/../../b"),
    ],
)
def test_ids_and_file_names_never_escape_the_index(fake_pipeline, tmp_path, filename, document_id):
    index_dir = fake_pipeline.settings.index_dir
    outside_before = _outside(tmp_path, index_dir)
    # No background compaction here: it would add and remove segment folders while we look.
    with make_client(fake_pipeline, background_compaction=False) as client:
        data = {"document_id": document_id} if document_id else {}
        r = client.post("/v1/documents", files={"file": (filename, b"Escape attempts are logged by the zorblax beacon.")}, data=data)
        assert r.status_code == 201, r.text
        (new_id,) = r.json()["document_ids"]
        assert security_safe_id(new_id)
        assert client.get(f"/v1/documents/{new_id}").status_code == 200
        assert client.delete(f"/v1/documents/{new_id}").status_code == 200
    outside_after = _outside(tmp_path, index_dir)
    assert outside_after == outside_before  # nothing written outside the index folder
    assert not (tmp_path.parent / "escape.txt").exists() and not Path("/escape.txt").exists()
    # the index folder holds only its own files: the database, vector segments, BM25 (tantivy), the locks
    assert all(p.name in {".lock", ".compact.lock", "segments", "lexical"} or p.name.startswith("store.sqlite") for p in index_dir.iterdir())


def security_safe_id(document_id: str) -> bool:
    return bool(document_id) and "/" not in document_id and "\\" not in document_id and ".." not in document_id and not os.path.isabs(document_id)


def test_path_tricks_in_urls_are_just_unknown_ids(keyed):
    for path in ("/v1/documents/..%2F..%2Fetc%2Fpasswd", "/v1/documents/%2e%2e", "/v1/documents/....//etc"):
        assert keyed.get(path).status_code == 404
        assert keyed.delete(path, headers=bearer(WRITE_KEY)).status_code == 404
