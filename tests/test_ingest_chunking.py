"""Ingestion and chunking: formats, sidecars, headings, pull quotes, windows, offsets."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rag.chunking import make_passages, split_paragraphs
from rag.sentences import sentence_around, sentence_spans
from rag.errors import UnsupportedDocument
from rag.ingest import document_from_bytes, document_from_text, load_documents, slugify
from support import one_page_pdf

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def test_default_corpus_ids_titles_and_sidecars():
    report = load_documents([CORPUS])
    docs = {d.document_id: d for d in report.documents}
    assert set(docs) == {"nato-indo-pacific-pivot", "korea-2024-nato-summit"}
    korea = docs["korea-2024-nato-summit"]
    assert korea.author == "Dr. Youngjun Kim"
    assert korea.title.startswith("The Republic of Korea and 2024 NATO")
    source = (CORPUS / "korea-2024-nato-summit.txt").read_text(encoding="utf-8")
    # The canonical text is the file's paragraphs, one blank line apart, each cited back to it.
    assert korea.text == "\n\n".join(para.strip() for para in source.split("\n\n") if para.strip())
    for block in korea.blocks:
        assert source[block.source_start : block.source_end] == korea.text[block.start : block.end]
    assert report.skipped == []


def test_ids_are_stable_slugs_of_the_path(tmp_path: Path):
    (tmp_path / "Sub Dir").mkdir()
    (tmp_path / "Sub Dir" / "My File.txt").write_text("Some text here.")
    (tmp_path / "same.txt").write_text("A.")
    (tmp_path / "same.md").write_text("B.")
    ids = sorted(d.document_id for d in load_documents([tmp_path]).documents)
    assert ids == ["same", "same-txt", "sub-dir--my-file"]  # files are read in sorted order
    assert slugify("../../etc/passwd") == "etc--passwd"


def test_paragraph_offsets_map_back_to_the_file():
    for document in load_documents([CORPUS]).documents:
        for paragraph in split_paragraphs(document):
            assert document.text[paragraph.doc_start : paragraph.doc_end] == paragraph.text
            assert paragraph.text == paragraph.text.strip()


def test_headings_are_sections_and_lead_the_paragraph_under_them():
    docs = {d.document_id: d for d in load_documents([CORPUS]).documents}
    nato = split_paragraphs(docs["nato-indo-pacific-pivot"])
    texts = [p.text for p in nato]
    assert "NATO’s Strategic Pivot to the Indo-Pacific" not in texts  # no paragraph of a heading alone
    assert any(t.startswith("NATO’s Strategic Pivot to the Indo-Pacific\n\n") for t in texts)
    assert nato[0].section == ""
    assert any(p.section == "NATO’s Strategic Pivot to the Indo-Pacific" for p in nato)
    assert any(p.section == "The Broader Implications" for p in nato)
    korea = split_paragraphs(docs["korea-2024-nato-summit"])
    assert korea[0].text == "By Dr. Youngjun Kim"  # bylines stay answerable
    # The title heading over the whole article is not a section (no title bias on every passage).
    assert korea[1].section == ""


def test_pull_quote_is_indexed_once():
    korea = next(d for d in load_documents([CORPUS]).documents if d.document_id == "korea-2024-nato-summit")
    paragraphs = split_paragraphs(korea)
    visits = [p for p in paragraphs if "NATO Defense College delegation" in p.text]
    assert len(visits) == 1 and visits[0].text.startswith("The 2024 visit")


def test_blank_line_and_single_newline_paragraphs():
    doc = document_from_text("Title Line Here\nFirst paragraph is long enough to be text.\n\n\nSecond one.  \n", "d")
    paragraphs = split_paragraphs(doc)
    # Two short paragraphs under one heading make one passage-sized paragraph, led by the heading
    # (bare text has no title: the heading is read and retrieved with what it heads).
    assert [p.text for p in paragraphs] == ["Title Line Here\n\nFirst paragraph is long enough to be text.\n\nSecond one."]
    assert paragraphs[0].section == "Title Line Here" and paragraphs[0].kind == "group"


def test_markdown_headings():
    doc = document_from_bytes("notes.md", "# Intro\nThe body text.\n## Next part\nMore text.".encode())
    paragraphs = split_paragraphs(doc)
    assert doc.title == "Intro"  # the first heading names the document and is no section of it
    assert [(p.section, p.text) for p in paragraphs] == [("", "The body text."), ("Next part", "Next part\n\nMore text.")]


def test_html_extracts_blocks_and_drops_scripts():
    html = b"<html><head><title>t</title><script>alert(1)</script></head><body><h1>Big Title</h1><p>Hello <b>bold</b> world, a paragraph.</p><ul><li>One item here.</li></ul></body></html>"
    doc = document_from_bytes("page.html", html)
    assert "alert" not in doc.text
    assert "Hello bold world, a paragraph." in doc.text
    assert doc.title == "t"
    assert [p.text for p in split_paragraphs(doc)] == ["Big Title\n\nHello bold world, a paragraph.\n\nOne item here."]


def test_pdf_text_is_extracted():
    doc = document_from_bytes("report.pdf", one_page_pdf(["The treaty was signed in 1949.", "It has 32 members."]))
    assert "signed in 1949." in doc.text
    assert "32 members" in doc.text


def test_bad_files_are_skipped_with_a_warning(tmp_path: Path, caplog):
    (tmp_path / "good.txt").write_text("A real paragraph of text.")
    (tmp_path / "empty.txt").write_text("   \n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (tmp_path / "binary.md").write_bytes(b"\x00\x01\x02junk")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")  # unsupported suffix: not even a candidate
    with caplog.at_level(logging.WARNING):
        report = load_documents([tmp_path])
    assert [d.document_id for d in report.documents] == ["good"]
    reasons = dict((Path(p).name, r) for p, r in report.skipped)
    assert set(reasons) == {"empty.txt", "latin1.txt", "binary.md", "broken.pdf"}
    assert "UTF-8" in reasons["latin1.txt"] and "empty" in reasons["empty.txt"]
    assert "skipping" in caplog.text


def test_unsupported_upload_type():
    with pytest.raises(UnsupportedDocument):
        document_from_bytes("data.docx", b"PK..")


def test_sentence_spans_respect_abbreviations():
    text = 'Dr. Kim met Lance D. Jackson in Washington D.C. on Monday. They spoke. "Is it over?" she asked. Yes.'
    sentences = [text[s:e] for s, e in sentence_spans(text)]
    assert sentences == ["Dr. Kim met Lance D. Jackson in Washington D.C. on Monday.", "They spoke.", '"Is it over?" she asked.', "Yes."]
    start = text.index("spoke")
    assert text[slice(*sentence_around(text, start, start + 5))] == "They spoke."


def test_long_paragraph_becomes_overlapping_windows():
    sentences = [f"Sentence number {i} talks about topic {i} at some length here." for i in range(40)]
    doc = document_from_text("\n" + " ".join(sentences) + "\n", "long")
    paragraphs = split_paragraphs(doc)
    passages = make_passages(paragraphs, max_words=50, overlap_sentences=1)
    assert len(passages) > 5
    for passage in passages:
        assert len(passage.text.split()) <= 50
        assert paragraphs[0].text[passage.paragraph_start : passage.paragraph_start + len(passage.text)] == passage.text
        assert doc.text[passage.doc_start : passage.doc_end] == passage.text
    for a, b in zip(passages, passages[1:]):
        assert b.paragraph_start < a.paragraph_start + len(a.text)  # one sentence of overlap
    assert passages[-1].text.endswith("number 39 talks about topic 39 at some length here.")


def test_a_sentence_longer_than_the_window_is_cut_at_words():
    doc = document_from_text(" ".join(["word"] * 500) + ".", "w")
    passages = make_passages(split_paragraphs(doc), max_words=100, overlap_sentences=1)
    assert all(len(p.text.split()) <= 100 for p in passages)
    assert sum(len(p.text.split()) for p in passages) >= 500


def test_a_blank_line_always_ends_a_sentence():
    from rag.sentences import sentence_spans

    text = "Installation\n\nRun the installer. It takes a minute\n\n\nThen restart"
    assert [text[a:b] for a, b in sentence_spans(text)] == ["Installation", "Run the installer.", "It takes a minute", "Then restart"]
