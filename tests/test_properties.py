"""Property tests (hypothesis): for any text, every paragraph and passage maps back to its exact characters.

Bounded (max_examples) so the module runs in a few seconds.  Texts mix prose-like pieces
(words, sentence ends, abbreviations, quotes, headings, blank lines) with arbitrary Unicode,
including the exotic whitespace that ``str.strip`` and ``str.split`` treat differently.
"""
from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.parsing.blocks import clean_inline
from rag.chunking import make_passages, split_paragraphs
from rag.sentences import sentence_around, sentence_spans
from rag.errors import UnsupportedDocument
from rag.ingest import _SLUG, document_from_bytes, document_from_text, slugify
from rag.parsing.html import parse_html
from rag.types import Document

PIECES = [
    "The", "alliance", "Dr.", "U.S.", "Ismay", "said", "1949", "NATO’s", "e.g.", "Mr.", "A.", "(", ")", "\"", "“", "”", "’",
    ".", "!", "?", ":", ";", ",", " ", " ", " ", "  ", "\n", "\n", "\n\n", "\t", "# ", "## Heading", "By ", "\r\n",
    "\u00a0", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x85", "\u3000", "é", "ß", "İ", "🙂", "\u200b",
]
prose = st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=120).map("".join)
any_text = prose | st.text(max_size=400)
BOUNDED = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


def _document(text: str) -> Document:
    return Document(document_id="d", text=text)


@BOUNDED
@given(any_text, st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=3))
def test_every_paragraph_and_passage_maps_back_to_its_exact_characters(text, max_words, overlap):
    document = _document(text)
    paragraphs = split_paragraphs(document)
    previous_end = 0
    for i, paragraph in enumerate(paragraphs):
        assert paragraph.paragraph_index == i
        assert text[paragraph.doc_start : paragraph.doc_end] == paragraph.text
        assert paragraph.text and paragraph.text == paragraph.text.strip()
        assert paragraph.doc_start >= previous_end  # in order, never overlapping
        previous_end = paragraph.doc_end
    passages = make_passages(paragraphs, max_words=max_words, overlap_sentences=overlap)
    by_index = {p.paragraph_index: p for p in paragraphs}
    for n, passage in enumerate(passages):
        paragraph = by_index[passage.paragraph_index]
        assert passage.passage_id == n
        assert passage.text, "empty passage"
        assert paragraph.text[passage.paragraph_start : passage.paragraph_start + len(passage.text)] == passage.text
        assert text[passage.doc_start : passage.doc_end] == passage.text
        assert passage.doc_start == paragraph.doc_start + passage.paragraph_start
    # every word of every paragraph is in some passage of that paragraph
    for paragraph in paragraphs:
        covered = [(p.paragraph_start, p.paragraph_start + len(p.text)) for p in passages if p.paragraph_index == paragraph.paragraph_index]
        assert covered, "a paragraph without passages"
        for word in re.finditer(r"\S+", paragraph.text):
            assert any(s <= word.start() and word.end() <= e for s, e in covered), word.group()


@BOUNDED
@given(any_text)
def test_sentence_spans_are_ordered_and_inside_the_text(text):
    previous_end = 0
    for start, end in sentence_spans(text):
        assert 0 <= previous_end <= start < end <= len(text)
        previous_end = end


@BOUNDED
@given(any_text.filter(lambda t: t.strip()), st.data())
def test_sentence_around_covers_the_span(text, data):
    start = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    end = data.draw(st.integers(min_value=start + 1, max_value=len(text)))
    s, e = sentence_around(text, start, end)
    assert 0 <= s <= start and end <= e <= len(text)


@BOUNDED
@given(any_text)
def test_canonical_text_cites_back_to_the_original(text):
    """The canonical text is the original's words (wraps joined, spaces collapsed), block by
    block; each block's source span holds the same words in the original."""
    try:
        document = document_from_text(text, "d")
    except UnsupportedDocument:
        assert not clean_inline(text)
        return

    def words(s: str) -> str:  # the visible characters, whatever the spacing
        return "".join(clean_inline(s).split())

    for block in document.blocks:
        shown = document.text[block.start : block.end]
        assert shown and shown == shown.strip()
        original = text[block.source_start : block.source_end]
        assert words(shown) in words(original) or block.kind == "list_item"
    assert words(document.text) == words("".join(text[b.source_start : b.source_end] for b in document.blocks)) or any(
        b.kind == "list_item" for b in document.blocks
    )
    if "\x00" not in text[:8192]:  # a NUL marks a binary file
        assert document_from_bytes("f.txt", text.encode("utf-8")).text == document.text


@BOUNDED
@given(st.text(max_size=200))
def test_slugs_are_safe_ids(value):
    slug = slugify(value)
    assert _SLUG.fullmatch(slug) or slug == "document"
    assert "/" not in slug and "\\" not in slug and ".." not in slug and not slug.startswith("-")
    assert document_from_text("some text", slug).document_id == slug  # a valid id is kept as given


tags = st.sampled_from(["p", "div", "li", "ul", "h2", "b", "script", "style", "td", "br", "blockquote", "pre", "nav", "span"])
html_pieces = st.one_of(
    tags.map(lambda t: f"<{t}>"), tags.map(lambda t: f"</{t}>"), st.text(max_size=12), st.sampled_from(["&amp;", "&lt;", "<!-- c -->", "<![CDATA[x]]>", "<p class='a'>"])
)


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(html_pieces, max_size=60).map("".join))
def test_html_extraction_never_crashes_and_has_no_markup_of_noise(html):
    try:
        text = parse_html(html).text
    except UnsupportedDocument:
        return
    assert isinstance(text, str)
    for block in text.split("\n\n") if text else []:
        assert block and block == block.strip()  # no empty blocks
        for line in block.split("\n"):  # code blocks keep lines (and their indentation)
            assert line == line.rstrip() and "\r" not in line
