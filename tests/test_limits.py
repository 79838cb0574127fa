"""Limits with clear answers: 413 (body, upload, files per request, PDF pages), 422 (question), 429 (rate)."""
from __future__ import annotations

import io

import pytest

from rag.errors import UnsupportedDocument
from rag.ingest import DocumentTooLarge
from rag.parsing.pdf import parse_pdf
from rag.pipeline import Pipeline
from test_security import make_client

QUESTION = {"question": "Who was NATO's first Secretary General?"}


def _pdf(pages: int, text: str = "") -> bytes:
    from pypdf import PdfWriter

    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_question_length_is_limited(fake_pipeline):
    with make_client(fake_pipeline, max_question_chars=50) as client:
        r = client.post("/v1/ask", json={"question": "x" * 51})
        assert r.status_code == 422 and "longer than 50 characters" in r.json()["detail"]
        r = client.post("/v1/search", json={"query": "x" * 51})
        assert r.status_code == 422
        assert client.post("/v1/ask", json={"question": "x" * 50}).status_code == 200


def test_body_size_is_limited_by_content_length(fake_pipeline):
    with make_client(fake_pipeline, max_body_bytes=1000) as client:
        r = client.post("/v1/ask", json={"question": "a " * 600})
        assert r.status_code == 413 and "1000 bytes" in r.json()["detail"]
        r = client.post("/v1/documents", json={"document_id": "big", "text": "word " * 300})
        assert r.status_code == 413
        assert "big" not in [d["document_id"] for d in client.get("/v1/documents").json()["documents"]]
        assert client.post("/v1/ask", json=QUESTION).status_code == 200


def test_body_size_is_limited_without_content_length(fake_pipeline):
    """A chunked upload (no Content-Length) is cut off as soon as it passes the limit."""
    sent = []

    def chunks():
        for _ in range(100):
            sent.append(1)
            yield b"x" * 500

    with make_client(fake_pipeline, max_body_bytes=2000) as client:
        r = client.post("/v1/documents", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "2000 bytes" in r.json()["detail"]
        r = client.post("/v1/ask", content=chunks(), headers={"Content-Type": "application/json"})
        assert r.status_code == 413


def test_upload_size_is_limited(fake_pipeline):
    with make_client(fake_pipeline, max_upload_bytes=100) as client:
        r = client.post("/v1/documents", files={"file": ("big.txt", b"word " * 50)})
        assert r.status_code == 413 and "100 bytes" in r.json()["detail"]
        r = client.post("/v1/documents", json={"document_id": "big", "text": "word " * 50})
        assert r.status_code == 413
        assert client.post("/v1/documents", files={"file": ("small.txt", b"Small enough.")}).status_code == 201


def test_documents_per_request_are_limited(fake_pipeline):
    with make_client(fake_pipeline, max_documents_per_request=3) as client:
        files = [("file", (f"note-{i}.txt", f"Note number {i} is about beacons.".encode())) for i in range(3)]
        r = client.post("/v1/documents", files=files)
        assert r.status_code == 201, r.text
        assert sorted(r.json()["document_ids"]) == ["note-0", "note-1", "note-2"]
        files.append(("file", ("note-3.txt", b"One too many.")))
        r = client.post("/v1/documents", files=files)
        assert r.status_code == 413 and "more than 3 files" in r.json()["detail"]
        many = [("file", (f"n{i}.txt", b"x")) for i in range(50)]
        assert client.post("/v1/documents", files=many).status_code == 413
        ids = {d["document_id"] for d in client.get("/v1/documents").json()["documents"]}
        assert "note-3" not in ids and "n0" not in ids
        # one id for several files makes no sense
        r = client.post("/v1/documents", files=files[:2], data={"document_id": "both"})
        assert r.status_code == 422


def test_pdf_page_count_is_limited(fake_pipeline):
    with pytest.raises(UnsupportedDocument, match="no text layer"):  # blank pages: nothing to index, and it says so
        parse_pdf(_pdf(3), max_pages=3)
    with pytest.raises(DocumentTooLarge, match="4 pages"):
        parse_pdf(_pdf(4), max_pages=3)
    with make_client(fake_pipeline, max_pdf_pages=3) as client:
        r = client.post("/v1/documents", files={"file": ("long.pdf", _pdf(4))})
        assert r.status_code == 413 and "4 pages" in r.json()["detail"] and "RAG_MAX_PDF_PAGES" in r.json()["detail"]


def test_rag_index_and_upload_refuse_a_long_line_alike(fake_pipeline, tmp_path):
    """Issue 22, item 3: with RAG_MAX_LINE_CHARS=1000 a file with a 3,000-character line was
    indexed by `rag index` (its limits came from a cached read of the environment) and refused
    by upload.  Both now take the limit from the same Settings and refuse it with one reason."""
    line = " ".join(["word"] * 600) + "s"
    assert len(line) == 3000
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "long.txt").write_text(f"A short first paragraph.\n\n{line}\n", encoding="utf-8")
    settings = fake_pipeline.settings.model_copy(update={"max_line_chars": 1000, "index_dir": tmp_path / "own-index"})
    pipeline = Pipeline(settings, encoder=fake_pipeline.encoder, reader=fake_pipeline.reader)
    report = pipeline.index_paths([folder])
    assert report.documents == 0
    [(path, indexing_reason)] = report.skipped
    assert path.endswith("long.txt") and "longer than the limit of 1000" in indexing_reason
    with make_client(fake_pipeline, max_line_chars=1000) as client:
        r = client.post("/v1/documents", files={"file": ("long.txt", (folder / "long.txt").read_bytes())})
        assert r.status_code == 415 and r.json()["detail"] == indexing_reason
        # and a line within the limit is taken by both
        (folder / "long.txt").write_text(f"A short first paragraph.\n\n{line[:900]}\n", encoding="utf-8")
        assert pipeline.index_paths([folder]).documents == 1
        r = client.post("/v1/documents", files={"file": ("long.txt", (folder / "long.txt").read_bytes())})
        assert r.status_code == 201


def test_rate_limit_per_client(fake_pipeline):
    with make_client(fake_pipeline, rate_limit="3/minute") as client:
        for _ in range(3):
            assert client.post("/v1/ask", json=QUESTION).status_code == 200
        r = client.post("/v1/ask", json=QUESTION)
        assert r.status_code == 429
        assert "rate limit exceeded" in r.json()["detail"] and "3 per 1 minute" in r.json()["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert client.get("/v1/documents").status_code == 429  # every /v1 route shares the budget
        # probes and metrics are never limited
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get("/metrics").status_code == 200


def test_rate_limit_is_per_client_address(fake_pipeline):
    from fastapi.testclient import TestClient

    with make_client(fake_pipeline, rate_limit="2/minute") as first:
        for _ in range(2):
            first.get("/v1/documents")
        assert first.get("/v1/documents").status_code == 429
        with TestClient(first.app, client=("10.0.0.2", 1234)) as second:
            assert second.get("/v1/documents").status_code == 200


def test_bad_rate_limit_setting_fails_at_start(fake_pipeline):
    with pytest.raises(ValueError):
        make_client(fake_pipeline, rate_limit="lots please")


def test_limit_errors_are_documented(fake_pipeline):
    with make_client(fake_pipeline) as client:
        spec = client.get("/openapi.json").json()
        ask = spec["paths"]["/v1/ask"]["post"]["responses"]
        assert {"413", "422", "429"} <= set(ask)
        assert ask["422"]["content"]["application/json"]["schema"]["properties"]["detail"]["type"] == "string"
