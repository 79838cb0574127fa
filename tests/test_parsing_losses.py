"""Issue 20 item 12: ordinary text is never refused as one giant line, and Markdown nesting
never loses text silently."""
from __future__ import annotations

import pytest

from rag.errors import UnsupportedDocument
from rag.ingest import IngestLimits, document_from_bytes

LIMITS = IngestLimits(max_line_chars=100_000)


@pytest.mark.parametrize("name", ["wrapped.txt", "wrapped.md", "wrapped.html"])
def test_hard_wrapped_lines_without_blank_lines_are_not_one_giant_line(name):
    # 4,000 lines of 60 characters and no blank line: one paragraph of 244,000 characters once
    # the wraps are joined, but no line of the file is longer than 60.
    lines = [f"Line {i:05d} of an ordinary hard-wrapped text about beacons..." for i in range(4_000)]
    assert {len(line) for line in lines} == {60}
    body = "\n".join(lines)
    data = (f"<html><body><p>\n{body}\n</p></body></html>" if name.endswith(".html") else body).encode()
    document = document_from_bytes(name, data, limits=LIMITS)
    assert "Line 03999 of an ordinary" in document.text


def test_a_real_long_line_is_still_refused():
    with pytest.raises(UnsupportedDocument, match="a line of"):
        document_from_bytes("one.txt", b"word " * 30_000, limits=LIMITS)
    with pytest.raises(UnsupportedDocument, match="a line of"):
        document_from_bytes("one.html", b"<p>" + b"word " * 30_000 + b"</p>", limits=LIMITS)


def test_a_list_nested_twelve_levels_keeps_every_item():
    markdown = "".join("  " * level + f"- item{level} of the nested list\n" for level in range(12))
    document = document_from_bytes("list.md", markdown.encode())
    assert all(f"item{level} of the nested list" in document.text for level in range(12)), document.text


@pytest.mark.parametrize("depth", [20, 30, 45])
def test_deeply_nested_quotes_keep_their_text(depth):
    markdown = "Intro paragraph.\n\n" + ">" * depth + " the deep quote text\n\nAfter the quote.\n"
    document = document_from_bytes("quotes.md", markdown.encode())
    assert "the deep quote text" in document.text and "After the quote." in document.text


def test_nesting_past_the_limit_is_refused_not_dropped():
    markdown = "Intro paragraph.\n\n" + ">" * 500 + " the deep quote text\n"
    with pytest.raises(UnsupportedDocument, match="nested more than"):
        document_from_bytes("quotes.md", markdown.encode())
