"""Issue 20 item 6: hostile .docx/.pptx/HTML/PDF files are refused from cheap checks before the
parser libraries build them (the parse sandbox's OS limits stay the backstop), and a Word file
of many paragraphs parses in linear time."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from rag.errors import DocumentTooLarge, UnsupportedDocument
from rag.parsing import parse_bytes

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "eval"))
import hostile_files  # noqa: E402


@pytest.mark.parametrize("name, build, reason", [
    ("inflating.docx", lambda: hostile_files.inflating_docx(70), "XML unpacks to"),
    ("many-shapes.pptx", lambda: hostile_files.many_shapes_pptx(25_000), "more than 20000 shapes"),
    ("nested.html", lambda: hostile_files.nested_html(990, 20_000), "nests too many elements"),
    ("page-tree.pdf", lambda: hostile_files.page_tree_pdf(200_000), "declares 200000 pages"),
])
def test_hostile_files_are_refused_before_parsing(name, build, reason):
    data = build()
    started = time.process_time()
    with pytest.raises(DocumentTooLarge, match=reason):
        parse_bytes(name, data, max_pdf_pages=1000)
    assert time.process_time() - started < 2.0


def test_a_lying_zip_directory_is_no_bomb():
    # zipfile reads no more than the declared size: the member fails its CRC check instead.
    with pytest.raises(UnsupportedDocument):
        parse_bytes("lying.docx", hostile_files.lying_docx())


def test_word_paragraphs_parse_in_linear_time():
    small, large = hostile_files.many_paragraphs_docx(2_000), hostile_files.many_paragraphs_docx(8_000)
    started = time.process_time()
    assert parse_bytes("s.docx", small).text.count("beacon") == 2_000
    one = time.process_time() - started
    started = time.process_time()
    assert parse_bytes("l.docx", large).text.count("beacon") == 8_000
    four = time.process_time() - started
    assert four < 8 * one + 0.5 and four < 5.0  # was 1.3-1.7 ms a paragraph, quadratic in styles


def test_ordinary_page_counts_and_outlines_are_not_refused():
    from support import make_pdf

    pdf = make_pdf([[(72, 400, 12, f"Beacon number {i} at the harbour wall is painted blue.", False)] for i in range(3)])
    assert "Beacon number 2" in parse_bytes("ok.pdf", pdf, max_pdf_pages=3).text.replace("\n", " ")
