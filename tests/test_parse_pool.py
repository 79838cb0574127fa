"""Issue 20 item 1: untrusted files are parsed in worker processes that the OS stops past their
CPU and memory budgets (rag/parse_pool.py); a stopped worker costs its file (413, or skipped by
``rag index``), never the server.

Before: a one-page PDF of 20,000 words held the GIL for >= 139 CPU-s (pdfplumber's quadratic
dedupe_chars, since replaced by pdfium: rag/parsing/pdf_chars.py), and the parse-time check
between pages never came."""
from __future__ import annotations

import time

import pytest

from rag.errors import DocumentTooLarge
from rag.ingest import IngestLimits, document_from_bytes
from rag.pipeline import Pipeline
from rag.settings import Settings
from support import make_pdf
from test_security import make_client

SANDBOX = IngestLimits(sandbox=True, max_parse_seconds=2)


def dense_pdf() -> bytes:
    """40 pages of 2,000 tiny words each: ~8 CPU-s to parse with pdfium (the one-page 4,000-word
    PDF that pdfplumber's quadratic dedupe_chars took ~20 CPU-s over now parses in 0.43 s)."""
    lines = [" ".join(f"w{i * 20 + j}" for j in range(20)) for i in range(2_000 // 20)]
    page = [(20, 780 - 1.9 * k, 2, text, False) for k, text in enumerate(lines)]
    return make_pdf([page] * 40)


def test_a_parse_past_its_cpu_budget_is_stopped_and_the_pool_goes_on():
    started = time.monotonic()
    with pytest.raises(DocumentTooLarge, match="CPU-seconds"):
        document_from_bytes("dense.pdf", dense_pdf(), limits=SANDBOX)
    assert time.monotonic() - started < 10 * SANDBOX.max_parse_seconds  # stopped near its budget, not after the ~8 CPU-s parse
    document = document_from_bytes("fine.md", b"# Fine\n\nThe beacon is blue.", limits=SANDBOX)
    assert document.text == "Fine\n\nThe beacon is blue."


def test_a_parse_past_its_memory_budget_is_stopped():
    text = ("The beacon at the harbour is blue and stands near the wall. " * 60_000).encode()  # 3.6 MB, one line each 60 chars
    lines = text.replace(b"wall. ", b"wall.\n")
    with pytest.raises(DocumentTooLarge, match="memory|exit code"):
        document_from_bytes("big.txt", lines, limits=IngestLimits(sandbox=True, max_parse_memory_bytes=4 * 2**20))
    assert document_from_bytes("big.txt", lines, limits=IngestLimits(sandbox=True)).text.startswith("The beacon")


@pytest.mark.parametrize("name, data", [
    ("notes.md", b"# Notes\n\n- one item\n- two items\n\n> a quote\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"),
    ("page.pdf", make_pdf([[(72, 700, 18, "Beacons", True), (72, 670, 10, "The beacon at the harbour is blue.", False)]], title="Beacons")),
    ("page.html", b"<html><head><title>Beacons</title></head><body><h1>Beacons</h1><p>The beacon is blue.</p></body></html>"),
])
def test_a_sandboxed_parse_is_the_same_document(name, data):
    assert document_from_bytes(name, data, "d", {"author": "A"}, "x", limits=SANDBOX) == \
        document_from_bytes(name, data, "d", {"author": "A"}, "x", limits=IngestLimits(max_parse_seconds=2))


def test_an_upload_over_budget_is_413_and_the_next_upload_works(fake_pipeline):
    with make_client(fake_pipeline, max_parse_seconds=2.0) as client:
        r = client.post("/v1/documents", files={"file": ("dense.pdf", dense_pdf(), "application/pdf")})
        assert r.status_code == 413 and "CPU-seconds" in r.json()["detail"]
        assert client.post("/v1/documents", files={"file": ("ok.txt", b"The beacon is blue.")}).status_code == 201


def test_rag_index_skips_a_file_over_budget_and_indexes_the_rest(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "dense.pdf").write_bytes(dense_pdf())
    (corpus / "fine.txt").write_text("The beacon at the harbour is blue.")
    pipeline = Pipeline(Settings(index_dir=tmp_path / "index", corpus_dir=corpus, embedding_model="hashing:64", reader="heuristic",
                                 max_parse_seconds=2.0))
    pipeline.warm_up()
    report = pipeline.index_paths([corpus])
    assert [d for d in pipeline.loaded_index.documents] == ["fine"]
    assert any("dense.pdf" in path and "CPU-seconds" in reason for path, reason in report.skipped), report.skipped
