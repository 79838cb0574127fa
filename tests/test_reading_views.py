"""Reading views: tables read as prose, every answer mapped back to the exact source characters."""
from __future__ import annotations

from rag.reading.base import Reader
from rag.reading_views import read_with_views, reading_view
from rag.types import AnswerSpan, Paragraph, Passage, ReaderOutput, RetrievedPassage

TABLE = "Licenses compared:\n\nFeature | Chardet | Charset Normalizer\nFast | yes | yes\nLicense | 0BSD disputed | MIT"


def _retrieved(text: str, start: int = 0, context: str = "", kind: str = "table") -> RetrievedPassage:
    paragraph = Paragraph("doc", 0, text, 100, 100 + len(text), kind=kind)
    passage = Passage(0, "doc", 0, text[start:], start, 100 + start, context=context)
    return RetrievedPassage(passage, paragraph, 1.0)


class QuoteReader(Reader):
    """Answers with the first occurrence of a fixed string in whatever text it is given."""

    name = "quote"
    default_threshold = 0.0

    def __init__(self, quote: str):
        self.quote = quote

    def read(self, question, passages, top_n=3):
        spans = []
        for rp in passages:
            at = rp.passage.text.find(self.quote)
            if at >= 0:
                spans.append(AnswerSpan(rp, rp.passage.paragraph_start + at, rp.passage.paragraph_start + at + len(self.quote), 0.9))
        return ReaderOutput(spans)


def test_table_rows_read_as_header_cell_pairs():
    view = reading_view(_retrieved(TABLE))
    assert "License: License; Chardet: 0BSD disputed; Charset Normalizer: MIT." not in view.retrieved.passage.text
    assert "Feature: License; Chardet: 0BSD disputed; Charset Normalizer: MIT." in view.retrieved.passage.text
    assert view.retrieved.passage.text.startswith("Licenses compared:")


def test_answers_map_back_to_the_cell_in_the_source():
    original = _retrieved(TABLE)
    [output] = read_with_views(QuoteReader("MIT"), ["What license?"], [[original]], top_n=3)
    [span] = output.spans
    assert span.retrieved is original and span.text == "MIT"
    assert original.paragraph.text[span.start : span.end] == "MIT"
    # A span that also covers the added header text maps to the cell only.
    [output] = read_with_views(QuoteReader("Charset Normalizer: MIT"), ["q"], [[original]], top_n=3)
    assert [s.text for s in output.spans] == ["MIT"]


def test_a_later_run_of_rows_uses_the_header_context():
    start = TABLE.index("License | 0BSD")
    original = _retrieved(TABLE, start=start, context="Feature | Chardet | Charset Normalizer")
    view = reading_view(original)
    assert view.retrieved.passage.text == "Feature: License; Chardet: 0BSD disputed; Charset Normalizer: MIT."
    [output] = read_with_views(QuoteReader("0BSD disputed"), ["q"], [[original]], top_n=3)
    [span] = output.spans
    assert original.paragraph.text[span.start : span.end] == "0BSD disputed" and span.start > start


def test_prose_is_read_as_is_and_answers_stop_at_a_block_boundary():
    text = "It can count up to 16 exabytes.\n\n33. Is zlib thread safe?"
    original = _retrieved(text)
    assert reading_view(original).retrieved is original
    [output] = read_with_views(QuoteReader("16 exabytes.\n\n33"), ["q"], [[original]], top_n=3)
    assert [s.text for s in output.spans] == ["16 exabytes."]


def test_code_with_pipes_is_read_as_code_not_as_a_table():
    code = "cat access.log | grep 404 | wc -l\nps aux | grep nginx"
    original = _retrieved(code, kind="code")
    assert reading_view(original).retrieved is original
    # Typed end to end: a real table paragraph is still viewed as rows.
    assert reading_view(_retrieved(TABLE)).offsets is not None
    assert reading_view(_retrieved(TABLE, kind="group")).offsets is None
