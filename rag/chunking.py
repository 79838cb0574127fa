"""Stage 2: documents -> paragraphs -> passages, with exact character offsets.

A parsed document's typed blocks (rag/parsing/) become paragraphs: each paragraph block on
its own, a run of short blocks under the same heading together (list items, a term and its
description, a byline and what follows, the sentence ending in ":" that introduces a code
block, list or table), a table longer than a passage cut into runs of rows.  Headings are not
paragraphs: their path (``OPTIONS > --bwlimit=RATE``) is each paragraph's ``section``.  A
document without blocks (built directly from text) is split at line breaks, short heading
lines becoming sections.  A paragraph repeating most of another (a pull quote) is dropped.
A paragraph longer than ``max_words`` is cut into overlapping sentence windows.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from rag.parsing.blocks import CODE, HEADING, LIST_ITEM, QUOTE, TABLE, TABLE_CELL_SEPARATOR, Block
from rag.parsing.bounds import MAX_HEADING_CHARS, MAX_SECTION_CHARS, clip
from rag.sentences import sentence_spans
from rag.types import Document, Paragraph, Passage

# Heading heuristics, measured on the seeds: their headings are 24-72 characters and 3-12 words;
# body paragraphs are 160+ characters.  A byline ("By Dr. ...") is kept as text so author
# questions stay answerable.
HEADING_MAX_CHARS = 80
HEADING_MAX_WORDS = 12
_SENTENCE_END_CHARS = ".!?:;,\"'”’)»|"
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+")
_LINE = re.compile(r"[^\n]+")
# Pull-quote detection: a paragraph is a repeat when >= 80% of its 3-word shingles occur in one
# other paragraph.  Exact containment is too strict: the second seed's pull quote edits the
# original ("IP4" -> "[Indo-Pacific Four]"), which leaves 92% of its shingles in place, while
# distinct paragraphs of the seeds share at most 20%.
SHINGLE_WORDS = 3
REPEAT_COVERAGE = 0.8


def is_heading(line: str, next_line: str | None) -> bool:
    if _MARKDOWN_HEADING.match(line):
        return True
    if len(line) > HEADING_MAX_CHARS or len(line.split()) > HEADING_MAX_WORDS:
        return False
    if line[-1] in _SENTENCE_END_CHARS or line.lower().startswith("by "):
        return False
    # A heading introduces body text (or a byline): the next line must be longer than it.
    return next_line is not None and (len(next_line) > len(line) or next_line.lower().startswith("by "))


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    if len(words) < SHINGLE_WORDS:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


# Tables are read in runs of rows this long: a row's words are drowned in a 180-word table
# passage (questions on table cells were retrieval misses in the real-documents gold set).
TABLE_WINDOW_WORDS = 60
# A block under this many words is "short": it joins its neighbours under the same heading.
# Bylines, option terms, list items and table rows are 2-30 words; the paragraphs of the
# seeds and of real manuals 40-250.
SHORT_BLOCK_WORDS = 40
DEFAULT_MAX_WORDS = 180
# Near-duplicate detection ignores 3-word shingles shared by more paragraphs than this: they
# are common phrases, not a quoted paragraph, and counting them is quadratic (10^5 paragraphs
# sharing one phrase took minutes).
MAX_SHINGLE_PARAGRAPHS = 8
_MIN_REPEAT_WORDS = 8


def split_paragraphs(document: Document, max_words: int = DEFAULT_MAX_WORDS) -> list[Paragraph]:
    if document.blocks:
        candidates = _group_blocks(document, max_words)
    else:
        candidates = _line_paragraphs(document)
    repeats = _repeated_paragraphs([document.text[c[0] : c[1]] for c in candidates])
    paragraphs: list[Paragraph] = []
    for i, (start, end, section, extra) in enumerate(candidates):
        if i in repeats:
            continue
        paragraphs.append(
            Paragraph(
                document_id=document.document_id,
                paragraph_index=len(paragraphs),
                text=document.text[start:end],
                doc_start=start,
                doc_end=end,
                section=section,
                **extra,
            )
        )
    return paragraphs


def _line_paragraphs(document: Document) -> list[tuple[int, int, str, dict]]:
    lines: list[tuple[int, int]] = []
    for match in _LINE.finditer(document.text):
        raw = match.group()
        stripped = raw.strip()
        if stripped:
            start = match.start() + (len(raw) - len(raw.lstrip()))
            lines.append((start, start + len(stripped)))
    candidates: list[tuple[int, int, str, dict]] = []
    section = ""
    for i, (start, end) in enumerate(lines):
        line = document.text[start:end]
        next_line = document.text[slice(*lines[i + 1])] if i + 1 < len(lines) else None
        if is_heading(line, next_line):
            # copied into every paragraph below it: capped (a "# " line may be 500,000 characters)
            section = clip(_MARKDOWN_HEADING.sub("", line).strip(), MAX_SECTION_CHARS)
            continue
        candidates.append((start, end, section, {}))
    return candidates


def _words(text: str) -> int:
    return len(text.split())


def _group_blocks(document: Document, max_words: int) -> list[tuple[int, int, str, dict]]:
    """Paragraph spans from blocks: (start, end, section, provenance fields)."""
    text = document.text
    groups: list[list[Block]] = []
    sizes: list[int] = []
    for block in document.blocks:
        words = _words(text[block.start : block.end])
        if block.kind == HEADING and _is_title(block, text, document.title):
            groups.append([])  # the title over the whole document is the document's, not a paragraph's
            sizes.append(0)
            continue
        if block.kind == HEADING:
            # A heading closes the run above it and opens the paragraph under it: its words
            # ("0.28.0 (28th November, 2024)", a slide title) are read and retrieved with the first
            # block of its section, and the offsets stay contiguous canonical text.
            groups.append([block])
            sizes.append(words)
            continue
        if block.kind == TABLE and words > max_words:
            for piece in _table_pieces(block, text, max_words):
                groups.append([piece])
                sizes.append(max_words)
            groups.append([])
            sizes.append(0)
            continue
        current = groups[-1] if groups else None
        opened = current is not None and len(current) == 1 and current[0].kind == HEADING and sizes[-1] + words <= max_words
        if current and (opened or _joins(current, sizes[-1], block, words, text, max_words)):
            current.append(block)
            sizes[-1] += words
        else:
            groups.append([block])
            sizes.append(words)
    # A heading with nothing under it (a chapter heading right above its first section's) stays
    # in the section paths only.
    return [_span(group, document.title) for group in groups if any(b.kind != HEADING for b in group)]


def _joins(group: list[Block], group_words: int, block: Block, words: int, text: str, max_words: int) -> bool:
    last = group[-1]
    if last.heading_path != block.heading_path or group_words + words > max_words:
        return False
    if text[last.start : last.end].rstrip().endswith(":") and block.kind in (CODE, LIST_ITEM, TABLE, QUOTE):
        return True  # "... like this:" and the example, list or table it introduces
    if _is_definition(last, text) or _is_definition(block, text):
        return False  # "--bwlimit=RATE\nThis option ...": one option, one paragraph
    short_run = group_words <= SHORT_BLOCK_WORDS * len(group) and all(_words(text[b.start : b.end]) < SHORT_BLOCK_WORDS for b in group)
    return short_run and words < SHORT_BLOCK_WORDS or (last.kind == LIST_ITEM == block.kind and short_run and words < 2 * SHORT_BLOCK_WORDS)


def _is_definition(block: Block, text: str) -> bool:
    """A term over its description (a manual's option, a <dt>/<dd> pair)."""
    return block.kind == LIST_ITEM and "\n" in text[block.start : block.end]


def _table_pieces(block: Block, text: str, max_words: int) -> list[Block]:
    """A long table as runs of whole rows (each row is one line of the table's text)."""
    pieces: list[Block] = []
    start = block.start
    words = 0
    position = block.start
    while position < block.end:
        newline = text.find("\n", position, block.end)
        row_end = block.end if newline < 0 else newline
        row_words = _words(text[position:row_end])
        if words and words + row_words > max_words:
            pieces.append(Block(TABLE, start, position - 1, heading_path=block.heading_path, pages=block.pages, bboxes=block.bboxes,
                                source_start=block.source_start, source_end=block.source_end))
            start, words = position, 0
        words += row_words
        position = row_end + 1
    pieces.append(Block(TABLE, start, block.end, heading_path=block.heading_path, pages=block.pages, bboxes=block.bboxes,
                        source_start=block.source_start, source_end=block.source_end))
    return pieces


def _is_title(block: Block, text: str, title: str) -> bool:
    return not block.heading_path and bool(title) and text[block.start : block.end] in (title, clip(title, MAX_HEADING_CHARS))


def _body_kind(group: list[Block]) -> str:
    """A paragraph's kind: its one block's (a heading over it does not count), else "group"."""
    body = [b for b in group if b.kind != HEADING]
    return body[0].kind if len(body) == 1 else "group"


def _span(group: list[Block], title: str) -> tuple[int, int, str, dict]:
    sources = [(b.source_start, b.source_end) for b in group if b.source_start is not None]
    pages = sorted({page for b in group for page in b.pages})
    extra = {
        "kind": TABLE if any(b.kind == TABLE for b in group) else _body_kind(group),
        "source_start": min(s for s, _ in sources) if sources else None,
        "source_end": max(e for _, e in sources) if sources else None,
        "pages": pages,
        "bboxes": [list(box) for b in group for box in b.bboxes],
    }
    path = next((b.heading_path for b in group if b.kind != HEADING), group[0].heading_path)
    if path and path[0] in (title, clip(title, MAX_HEADING_CHARS)):
        path = path[1:]  # the title heading over the whole document is not a section
    return group[0].start, group[-1].end, " > ".join(path), extra


def _repeated_paragraphs(texts: Sequence[str]) -> set[int]:
    """Indexes of paragraphs that repeat (most of) another, longer or earlier, paragraph.

    Exact repeats (after normalising case and spaces) by hashing; near repeats (a pull quote
    with an edit) by shared rare shingles.  Linear in the text apart from the bounded
    candidate lists."""
    repeats: set[int] = set()
    first_seen: dict[str, int] = {}
    for i, text in enumerate(texts):
        if _words(text) < _MIN_REPEAT_WORDS:
            continue
        key = " ".join(text.lower().split())
        if key in first_seen:
            repeats.add(i)
        else:
            first_seen[key] = i
    shingles = [_shingles(t) if _words(t) >= _MIN_REPEAT_WORDS and i not in repeats else set() for i, t in enumerate(texts)]
    where: dict[tuple[str, ...], list[int]] = {}
    for i, own in enumerate(shingles):
        for shingle in own:
            holders = where.setdefault(shingle, [])
            if len(holders) <= MAX_SHINGLE_PARAGRAPHS:
                holders.append(i)
    for i, own in enumerate(shingles):
        if not own:
            continue
        overlap: dict[int, int] = {}
        for shingle in own:
            holders = where[shingle]
            if len(holders) > MAX_SHINGLE_PARAGRAPHS:
                continue
            for j in holders:
                if j != i:
                    overlap[j] = overlap.get(j, 0) + 1
        for j, shared in overlap.items():
            if j in repeats or shared < REPEAT_COVERAGE * len(own):
                continue
            longer = len(texts[j]) > len(texts[i]) or (len(texts[j]) == len(texts[i]) and j < i)
            if longer:
                repeats.add(i)
                break
    return repeats


def make_passages(
    paragraphs: Iterable[Paragraph],
    max_words: int,
    overlap_sentences: int = 1,
    first_passage_id: int = 0,
    title: str = "",
) -> list[Passage]:
    passages: list[Passage] = []
    for paragraph in paragraphs:
        if paragraph.kind == TABLE:
            windows = _row_windows(paragraph.text, min(max_words, TABLE_WINDOW_WORDS))
        else:
            windows = [(s, e, "") for s, e in _windows(paragraph.text, max_words, overlap_sentences)]
        for local_start, local_end, context in windows:
            passages.append(
                Passage(
                    passage_id=first_passage_id + len(passages),
                    document_id=paragraph.document_id,
                    paragraph_index=paragraph.paragraph_index,
                    text=paragraph.text[local_start:local_end],
                    paragraph_start=local_start,
                    doc_start=paragraph.doc_start + local_start,
                    section=paragraph.section,
                    title=title,
                    context=context,
                )
            )
    return passages


def _row_windows(text: str, max_words: int) -> list[tuple[int, int, str]]:
    """A table (with any sentence introducing it) as runs of whole rows; runs after the first
    carry the header row as context for the encoders (it is not part of the passage text)."""
    lines: list[tuple[int, int]] = []
    position = 0
    for line in text.split("\n"):
        if line.strip():
            lines.append((position, position + len(line)))
        position += len(line) + 1
    header = next((text[s:e] for s, e in lines if TABLE_CELL_SEPARATOR in text[s:e]), "")
    windows: list[tuple[int, int, str]] = []
    start = end = None
    words = 0
    for line_start, line_end in lines:
        line_words = _words(text[line_start:line_end])
        if start is not None and words + line_words > max_words:
            windows.append((start, end, ""))
            start, words = None, 0
        if start is None:
            start = line_start
        end = line_end
        words += line_words
    if start is not None:
        windows.append((start, end, ""))
    return [(s, e, "" if i == 0 or not header or text[s:e].startswith(header) else header) for i, (s, e, _) in enumerate(windows)]


def _windows(text: str, max_words: int, overlap: int) -> list[tuple[int, int]]:
    if len(text.split()) <= max_words:
        return [(0, len(text))]
    sentences = _bounded_sentences(text, max_words)
    windows: list[tuple[int, int]] = []
    i = 0
    while i < len(sentences):
        j, words = i, 0
        while j < len(sentences) and (j == i or words + sentences[j][2] <= max_words):
            words += sentences[j][2]
            j += 1
        windows.append((sentences[i][0], sentences[j - 1][1]))
        if j >= len(sentences):
            break
        i = max(j - overlap, i + 1)
    return windows


def _bounded_sentences(text: str, max_words: int) -> list[tuple[int, int, int]]:
    """Sentences as (start, end, words); a sentence longer than max_words is cut at word gaps."""
    out: list[tuple[int, int, int]] = []
    for start, end in sentence_spans(text):
        words = list(re.finditer(r"\S+", text[start:end]))
        for k in range(0, len(words), max_words):
            chunk = words[k : k + max_words]
            out.append((start + chunk[0].start(), start + chunk[-1].end(), len(chunk)))
    return out
