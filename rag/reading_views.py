"""What the reader reads: passages as prose, answers mapped back to the exact source characters.

A table passage is rows of cells separated by " | " (rag/parsing/blocks.py).  A reader trained
on prose cannot line a cell up with its column header across that layout (real-documents gold
set: F1 5 on table-cell questions), so each data row is read as "Header: cell; Header: cell."
Every character of the view that comes from the passage remembers its offset; an answer span
in the view maps back to the passage's own characters, so the citation still quotes the
document exactly.  Any answer is also cut at a blank line: a group paragraph joins several
blocks, and an answer never spans two of them ("16 exabytes.\\n\\n33").
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from rag.parsing.blocks import TABLE, TABLE_CELL_SEPARATOR
from rag.types import AnswerSpan, RetrievedPassage

_ROW_END = "."
_CELL_JOIN = "; "
_HEADER_JOIN = ": "


@dataclass
class ReadingView:
    original: RetrievedPassage
    retrieved: RetrievedPassage  # what the reader gets (the original when no view is needed)
    offsets: list[int] | None = None  # view character -> passage character, -1 for added text

    def map_back(self, span: AnswerSpan) -> AnswerSpan | None:
        """The span in the original paragraph's text, or None when it quotes no source text."""
        base = self.original.passage.paragraph_start
        if self.offsets is None:
            start, end = span.start, span.end
        else:
            local = [self.offsets[i] for i in range(span.start, span.end) if 0 <= i < len(self.offsets) and self.offsets[i] >= 0]
            if not local:
                return None
            start, end = base + local[0], base + local[-1] + 1
        text = self.original.paragraph.text
        cut = text.find("\n\n", start, end)
        if cut >= 0:
            end = cut
        while end > start and text[end - 1].isspace():
            end -= 1
        while start < end and text[start].isspace():
            start += 1
        if end <= start:
            return None
        return AnswerSpan(self.original, start, end, span.score)


def reading_view(retrieved: RetrievedPassage) -> ReadingView:
    passage = retrieved.passage
    lines = passage.text.split("\n")
    # Typed from parsing to reading: only a paragraph the parser made of a table is read as one.
    # Deciding by " | " in the text turned a code block of shell pipelines into fake rows.
    if retrieved.paragraph.kind != TABLE or not any(TABLE_CELL_SEPARATOR in line for line in lines):
        return ReadingView(retrieved, retrieved)
    header = passage.context or next((line for line in lines if TABLE_CELL_SEPARATOR in line), "")
    headers = header.split(TABLE_CELL_SEPARATOR)
    parts: list[str] = []
    offsets: list[int] = []

    def add(text: str, source: int | None) -> None:
        parts.append(text)
        offsets.extend(range(source, source + len(text)) if source is not None else [-1] * len(text))

    position = 0
    for number, line in enumerate(lines):
        if number:
            add(" ", None)
        cells = line.split(TABLE_CELL_SEPARATOR)
        if len(cells) < 2 or line == header:
            add(line, position)  # prose, or the header row itself
        else:
            cell_start = position
            for i, cell in enumerate(cells):
                if i:
                    add(_CELL_JOIN, None)
                name = headers[i] if i < len(headers) else ""
                if name and name != cell:
                    add(name + _HEADER_JOIN, None)
                add(cell, cell_start)
                cell_start += len(cell) + len(TABLE_CELL_SEPARATOR)
            if not line.endswith(_ROW_END):
                add(_ROW_END, None)
        position += len(line) + 1
    text = "".join(parts)
    view_paragraph = replace(retrieved.paragraph, text=text, doc_start=0, doc_end=len(text))
    view_passage = replace(passage, text=text, paragraph_start=0, doc_start=0, context="")
    view = RetrievedPassage(view_passage, view_paragraph, retrieved.score, retrieved.scores, retrieved.rank)
    return ReadingView(retrieved, view, offsets)


def read_with_views(reader, questions: list[str], passages: list[list[RetrievedPassage]], top_n: int):
    """``reader.read_batch`` over reading views; every span comes back in source coordinates."""
    views = [[reading_view(rp) for rp in ps] for ps in passages]
    outputs = reader.read_batch(questions, [[v.retrieved for v in vs] for vs in views], top_n=top_n)
    for output, vs in zip(outputs, views, strict=True):
        by_view = {id(v.retrieved): v for v in vs}
        spans: list[AnswerSpan] = []
        for span in output.spans:
            mapped = _back(span, by_view)
            if mapped is not None and not any(m.retrieved is mapped.retrieved and (m.start, m.end) == (mapped.start, mapped.end) for m in spans):
                spans.append(mapped)
        output.spans = spans
    return outputs


def _back(span: AnswerSpan, by_view: dict[int, ReadingView]) -> AnswerSpan | None:
    """``span`` and the spans supporting it, in source characters."""
    view = by_view.get(id(span.retrieved))
    mapped = view.map_back(span) if view is not None else span
    if mapped is not None and span.supporting:
        mapped.supporting = [s for s in (_back(s, by_view) for s in span.supporting) if s is not None]
    return mapped
