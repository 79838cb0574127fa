"""Issue 20 item 3: document-level text (title, heading path) copied into every block and
passage is capped, on every path in (files, Markdown headings, sidecars, multipart, JSON), so a
document's stored index is bounded by a small multiple of its text.

Before: a 536 KB .md with a 500,000-character heading and 1,000 paragraphs made a 994 MB index."""
from __future__ import annotations

import json
from pathlib import Path

from rag.parsing.bounds import MAX_HEADING_CHARS, MAX_SECTION_CHARS, MAX_TITLE_CHARS
from rag.pipeline import Pipeline
from rag.settings import Settings
from test_security import make_client

HEADING = "H" * 500_000


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_a_huge_markdown_heading_is_not_copied_into_every_passage(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    paragraphs = "\n\n".join(f"Paragraph {i} says that beacon number {i} is blue and stands near the harbour wall." for i in range(300))
    markdown = f"# {HEADING}\n\n## {HEADING}\n\n{paragraphs}\n"
    (corpus / "big.md").write_text(markdown)
    (corpus / "side.md").write_text("# Side\n\nThe side document has a sidecar with a huge title and author.\n")
    (corpus / "side.meta.json").write_text(json.dumps({"title": "T" * 30_000, "author": "A" * 30_000}))
    pipeline = Pipeline(Settings(index_dir=tmp_path / "index", corpus_dir=corpus, embedding_model="hashing:256", reader="heuristic"))
    pipeline.warm_up()
    pipeline.index_paths([corpus])
    index = pipeline.loaded_index
    assert len(index.passages) >= 20
    for passage in index.passages:
        assert len(passage.section) <= MAX_SECTION_CHARS and len(passage.title) <= MAX_TITLE_CHARS
    for stored_document in index.documents.values():
        document = stored_document.document
        assert len(document.title) <= MAX_TITLE_CHARS and len(document.author) <= MAX_TITLE_CHARS
        for block in document.blocks:
            assert all(len(entry) <= MAX_HEADING_CHARS for entry in block.heading_path)
            assert len(block.section) <= MAX_SECTION_CHARS
    # The heading's 1 MB is stored with the document text (once); every copy of it is capped.
    stored = _folder_bytes(tmp_path / "index")
    assert stored < 4 * len(markdown) + 4_000_000, stored


def test_multipart_metadata_has_the_json_limits(fake_pipeline):
    with make_client(fake_pipeline) as client:
        r = client.post("/v1/documents", files={"file": ("t.txt", b"A text about beacons.")}, data={"title": "T" * 1_000_000})
        assert r.status_code == 422 and "title" in r.json()["detail"]
        r = client.post("/v1/documents", files={"file": ("t.txt", b"A text about beacons.")}, data={"source_url": "u" * 2001})
        assert r.status_code == 422
        r = client.post("/v1/documents", files={"file": ("t.txt", b"A text about beacons.")}, data={"title": "Beacons"})
        assert r.status_code == 201
