"""Adversarial shapes through parsing and chunking: results stay correct (their time per
character is measured by eval/bench/ingest_shapes.py, not asserted here)."""
from __future__ import annotations

from rag.chunking import make_passages, split_paragraphs
from rag.sentences import sentence_spans

from rag.ingest import document_from_bytes, document_from_text, slugify



def test_a_single_huge_token_is_one_sentence():
    text = "Start. " + "X" * 1_000_000 + ". End of it."
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == ["Start.", "X" * 1_000_000 + ".", "End of it."]


def test_long_runs_of_spaces_collapse():
    document = document_from_text("what is x" + " " * 40_000 + "y", "spaces")
    assert document.text == "what is x y"


def test_many_paragraphs_sharing_a_phrase_are_all_kept():
    # 20,000 distinct paragraphs that share one phrase: none is a repeat of another.
    text = "\n\n".join(f"The shared opening phrase of every paragraph then item number {i} differs here." for i in range(20_000))
    document = document_from_text(text, "many")
    paragraphs = split_paragraphs(document, max_words=16)
    assert len(paragraphs) == 20_000
    assert paragraphs[-1].text.endswith("item number 19999 differs here.")


def test_exact_repeats_are_indexed_once_but_short_ones_stay():
    long = "This paragraph is long enough to count as a real repeat of itself when quoted."
    document = document_from_text(f"{long}\n\nShort note.\n\n{long}\n\nShort note.", "repeats")
    texts = [p.text for p in split_paragraphs(document, max_words=16)]
    assert texts.count(long) == 1


def test_forty_thousand_tiny_html_paragraphs():
    html = "".join(f"<p>w{i}</p>" for i in range(40_000)).encode()
    document = document_from_bytes("tiny.html", html)
    passages = make_passages(split_paragraphs(document), max_words=180)
    assert sum(len(p.text.split()) for p in passages) == 40_000  # short blocks grouped, none lost


def test_non_ascii_names_keep_distinct_ids():
    names = ["отчёт", "доклад", "заметка", "名前", "!!!", "???"]
    ids = [slugify(name) for name in names]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "отчёт" and ids[3] == "名前"


def test_pdf_parsing_stops_at_its_time_budget():
    import pytest

    from rag.errors import DocumentTooLarge
    from rag.ingest import IngestLimits
    from support import column as _column
    from support import make_pdf as _pdf

    pages = [_column(72, 400, [f"Page {n} says something about topic {n * 7}."]) for n in range(30)]
    with pytest.raises(DocumentTooLarge, match="RAG_MAX_PARSE_SECONDS"):
        document_from_bytes("slow.pdf", _pdf(pages), limits=IngestLimits(max_parse_seconds=1e-9))
    assert document_from_bytes("fine.pdf", _pdf(pages), limits=IngestLimits(max_parse_seconds=60)).text


def test_hostile_sidecar_and_escaping_symlinks_do_not_stop_indexing(tmp_path):
    import os

    from rag.ingest import load_documents

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "note.txt").write_text("A note about the harbour.")
    (corpus / "note.meta.json").write_text("[" * 50_000 + "]" * 50_000)
    outside = tmp_path / "secret.txt"
    outside.write_text("Not part of the corpus.")
    os.symlink(outside, corpus / "link.txt")
    report = load_documents([corpus])
    assert [d.document_id for d in report.documents] == ["note"]
    assert report.skipped == [(str(corpus / "link.txt"), "symbolic link to a file outside the folder")]
