"""Messy input: every bad file is skipped with a clear message, the rest indexes; uploads get 4xx."""
from __future__ import annotations

import io
import os
import random
import time
from pathlib import Path

import pytest

from rag.ingest import document_from_bytes, load_documents
from rag.parsing.html import parse_html
from rag.errors import UnsupportedDocument
from rag.pipeline import Pipeline
from rag.settings import Settings
from support import one_page_pdf
from test_security import make_client

GOOD_PDF = one_page_pdf(["The treaty was signed in 1949.", "It has 32 members."])


def _encrypted_pdf(user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(GOOD_PDF)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _junk(size: int, seed: int, nul: bool) -> bytes:
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(size))
    return data if nul else data.replace(b"\x00", b"\x01")


# file name -> (bytes, expected word in the skip reason); None = must be indexed
BAD_FILES: dict[str, tuple[bytes, str]] = {
    "junk-with-nul.txt": (_junk(4096, 1, nul=True), "binary"),
    "junk-no-nul.md": (b"\xc3\x28" + _junk(4096, 2, nul=False), "UTF-8"),
    "junk.html": (b"\xff\xfe\xfa" + _junk(2048, 3, nul=False), "UTF-8"),
    "junk.pdf": (_junk(4096, 4, nul=True), "broken PDF"),
    "empty.txt": (b"", "empty"),
    "blank.md": (b" \n\t\n  ", "empty"),
    "empty.pdf": (b"", "broken PDF"),
    "no-text.html": (b"<html><head><script>alert(1)</script></head><body></body></html>", "empty"),
    "invalid-utf8.txt": (b"Fine text, then \xff\xfe broken bytes.", "UTF-8"),
    "truncated.pdf": (GOOD_PDF[: len(GOOD_PDF) // 2], "PDF"),
    "not-really.pdf": (b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF", "PDF"),
    "encrypted.pdf": (_encrypted_pdf("secret"), "encrypted"),
    "deep.html": (b"<div>" * 100_000 + b"too deep" + b"</div>" * 100_000, "nested"),
    "deep-unclosed.html": (b"<span>" * 50_000 + b"text", "nested"),
    "too-many-elements.html": (b"<b>x</b>" * 250_000, "elements"),
}
GOOD_FILES: dict[str, bytes] = {
    "good.txt": "A real paragraph of text about the zorblax beacon.\n".encode(),
    "latin-ok.md": "Caf\u00e9 society and na\u00efve questions, in valid UTF-8.\n".encode(),
    "good.html": b"<html><body><h1>Title</h1><p>Hello <b>bold</b> world.</p><script>evil()</script></body></html>",
    "good.pdf": GOOD_PDF,
    # encrypted with an empty user password: only copying/printing is restricted, the text is readable
    "owner-locked.pdf": _encrypted_pdf(""),
    # sloppy HTML: unclosed <p> tags nest in the parser; every paragraph must still be kept
    "unclosed.html": b"<p>First paragraph here.<p>Second paragraph here.<p>Third paragraph here.",
}
# files are read in sorted order: good.html takes the id "good", good.txt becomes "good-txt"
GOOD_IDS = {"good", "good-txt", "latin-ok", "good-pdf", "owner-locked", "unclosed"}
HUGE_LINE = "huge-line.txt"  # 50 MB without a newline, written by the fixture


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("messy")
    for name, (data, _) in BAD_FILES.items():
        (folder / name).write_bytes(data)
    for name, data in GOOD_FILES.items():
        (folder / name).write_bytes(data)
    with open(folder / HUGE_LINE, "wb") as fh:
        chunk = (b"lorem ipsum dolor sit amet " * 40_000)[: 1024 * 1024]  # 1 MiB, 50 of them
        for _ in range(50):
            fh.write(chunk)
    return folder


def test_bad_files_are_skipped_with_clear_messages(messy_folder):
    started = time.perf_counter()
    report = load_documents([messy_folder])
    elapsed = time.perf_counter() - started
    reasons = {Path(path).name: reason for path, reason in report.skipped}
    expected = {**{name: word for name, (_, word) in BAD_FILES.items()}, HUGE_LINE: "line of"}
    assert set(reasons) == set(expected), reasons
    for name, word in expected.items():
        assert word.lower() in reasons[name].lower(), (name, reasons[name])
    assert "52428800 characters" in reasons[HUGE_LINE] and "RAG_MAX_LINE_CHARS" in reasons[HUGE_LINE]
    docs = {d.document_id: d for d in report.documents}
    assert set(docs) == GOOD_IDS
    assert "signed in 1949" in docs["owner-locked"].text
    assert docs["unclosed"].text.split("\n\n") == ["First paragraph here.", "Second paragraph here.", "Third paragraph here."]
    assert "evil" not in docs["good"].text and "Hello bold world." in docs["good"].text
    assert elapsed < 60, f"ingesting the messy folder took {elapsed:.1f}s"


def test_the_rest_indexes_and_answers(messy_folder, tmp_path):
    settings = Settings(index_dir=tmp_path / "index", embedding_model="hashing:256", reader="heuristic")
    pipeline = Pipeline(settings)
    pipeline.warm_up()
    report = pipeline.index_paths([messy_folder])
    assert report.documents == 6 and len(report.skipped) == len(BAD_FILES) + 1
    assert {d["document_id"] for d in pipeline.documents()} == GOOD_IDS
    assert pipeline.ask("When was the treaty signed?").answers


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_uploads_get_a_clear_4xx(fake_pipeline, name):
    data, word = BAD_FILES[name]
    with make_client(fake_pipeline, max_upload_bytes=4 * 1024 * 1024, max_body_bytes=8 * 1024 * 1024) as client:
        r = client.post("/v1/documents", files={"file": (name, data)})
        assert r.status_code in (413, 415, 422), (r.status_code, r.text)
        assert word.lower() in r.json()["detail"].lower()
        assert client.get("/readyz").status_code == 200


def test_huge_line_upload(fake_pipeline):
    line = b"lorem ipsum " * 200_000  # 2.4 MB, one line
    with make_client(fake_pipeline, max_upload_bytes=4 * 1024 * 1024, max_body_bytes=8 * 1024 * 1024, max_line_chars=1_000_000) as client:
        r = client.post("/v1/documents", files={"file": ("line.txt", line)})
        assert r.status_code == 415 and "line of" in r.json()["detail"]
        r = client.post("/v1/documents", json={"document_id": "line", "text": line.decode()})
        assert r.status_code == 415


def test_deep_html_is_refused_quickly():
    for html in ("<blockquote>" * 100_000, "<div>" * 1_000_000, "<li><ul>" * 50_000):
        started = time.perf_counter()
        with pytest.raises(UnsupportedDocument):
            parse_html(html)
        assert time.perf_counter() - started < 10
    # nesting within the limit is fine, and text outside/inside nested blocks is kept in order
    assert parse_html("<div>" * 500 + "<p>deep text</p>" + "</div>" * 500).text == "deep text"
    assert parse_html("<ul><li>Item <ul><li>sub</li></ul> tail</li></ul>").text.split("\n\n") == ["Item", "sub", "tail"]
    # unclosed raw-text elements do not fool the scanner
    assert parse_html("<p>ok</p><script>" + "<div>" * 5000).text == "ok"


def test_arbitrary_bytes_never_crash_ingestion():
    rng = random.Random(7)
    for i in range(60):
        data = os.urandom(rng.randrange(0, 3000)) if i % 2 else bytes(rng.choice(b"<>/pdiv \n%PDF-1.4obj") for _ in range(rng.randrange(0, 3000)))
        for suffix in (".txt", ".html", ".pdf", ".md"):
            try:
                document_from_bytes("f" + suffix, data)
            except UnsupportedDocument:
                pass
