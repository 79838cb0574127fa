"""Typed blocks and the canonical text they are cut from.

Every parser (plain text, Markdown, HTML, PDF, Word, PowerPoint) emits blocks through a
``CanonicalBuilder``: it joins them into the document's canonical text (what a reader sees:
markup removed, hard wraps joined, whitespace inside a paragraph collapsed), one blank line
between blocks, and records each block's offsets into that text, its heading path, and where
it came from (character span in the source file, or PDF pages and bounding boxes).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from rag.parsing.bounds import MAX_HEADING_CHARS, MAX_TITLE_CHARS, bounded_path, clip

# The block kinds a parser may emit (Unstructured's element types, Docling's labels).
HEADING = "heading"
PARAGRAPH = "paragraph"
LIST_ITEM = "list_item"
TABLE = "table"
CODE = "code"
QUOTE = "quote"
CAPTION = "caption"
FOOTNOTE = "footnote"
BLOCK_KINDS = (HEADING, PARAGRAPH, LIST_ITEM, TABLE, CODE, QUOTE, CAPTION, FOOTNOTE)

TABLE_CELL_SEPARATOR = " | "
BLOCK_SEPARATOR = "\n\n"
HEADING_PATH_SEPARATOR = " > "

# Characters a reader never sees: soft hyphen, zero-width space/joiners, byte-order mark.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_WHITESPACE = re.compile(r"\s+")


def clean_inline(text: str) -> str:
    """One paragraph's text as shown: invisible characters gone, whitespace runs (wraps,
    justified double spaces, tabs, no-break spaces) collapsed to one space.  Linear time."""
    return _WHITESPACE.sub(" ", text.translate(_INVISIBLE)).strip()


def clean_code(text: str) -> str:
    """A code block keeps its lines: trailing spaces and surrounding blank lines dropped,
    common indentation removed."""
    lines = [line.rstrip() for line in text.translate(_INVISIBLE).replace("\t", "    ").splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    indent = min((len(line) - len(line.lstrip()) for line in lines if line), default=0)
    return "\n".join(line[indent:] for line in lines)


@dataclass(frozen=True)
class Block:
    kind: str
    start: int  # canonical text [start:end] is the block's text
    end: int
    level: int = 0  # heading level (1 = top); nesting depth of a list item
    heading_path: tuple[str, ...] = ()  # the headings above this block, outermost first
    source_start: int | None = None  # span in the source file's text (.txt, .md, .html)
    source_end: int | None = None
    pages: tuple[int, ...] = ()  # 1-based pages (PDF) or slides (PPTX)
    bboxes: tuple[tuple[float, ...], ...] = ()  # (page, x0, top, x1, bottom) in PDF points
    rows: tuple[tuple[str, ...], ...] = ()  # table cells, as shown

    @property
    def section(self) -> str:
        return HEADING_PATH_SEPARATOR.join(self.heading_path)

    def to_dict(self) -> dict:
        data = {"kind": self.kind, "start": self.start, "end": self.end}
        if self.level:
            data["level"] = self.level
        if self.heading_path:
            data["heading_path"] = list(self.heading_path)
        if self.source_start is not None:
            data["source_start"], data["source_end"] = self.source_start, self.source_end
        if self.pages:
            data["pages"] = list(self.pages)
        if self.bboxes:
            data["bboxes"] = [list(b) for b in self.bboxes]
        if self.rows:
            data["rows"] = [list(r) for r in self.rows]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Block:
        return cls(
            kind=data["kind"],
            start=int(data["start"]),
            end=int(data["end"]),
            level=int(data.get("level", 0)),
            heading_path=tuple(data.get("heading_path", ())),
            source_start=data.get("source_start"),
            source_end=data.get("source_end"),
            pages=tuple(data.get("pages", ())),
            bboxes=tuple(tuple(b) for b in data.get("bboxes", ())),
            rows=tuple(tuple(r) for r in data.get("rows", ())),
        )


@dataclass
class ParsedDocument:
    """A parser's result: canonical text, its blocks, and what the file says about itself."""

    text: str
    blocks: list[Block]
    format: str
    title: str = ""
    metadata: dict[str, str] = field(default_factory=dict)


class CanonicalBuilder:
    """Appends blocks to the canonical text, keeping offsets and the heading path."""

    def __init__(self, fmt: str):
        self.format = fmt
        self._parts: list[str] = []
        self._length = 0
        self.blocks: list[Block] = []
        self._headings: list[tuple[int, str]] = []  # (level, text) of the open sections

    @property
    def heading_path(self) -> tuple[str, ...]:
        """Copied into every block: bounded (rag/parsing/bounds.py), whatever the headings."""
        return bounded_path(tuple(text for _, text in self._headings))

    def heading(self, text: str, level: int, **provenance) -> Block | None:
        text = clean_inline(text)
        if not text:
            return None
        level = max(1, int(level))
        while self._headings and self._headings[-1][0] >= level:
            self._headings.pop()
        block = self._add(HEADING, text, level=level, heading_path=self.heading_path, **provenance)
        self._headings.append((level, clip(text, MAX_HEADING_CHARS)))
        return block

    def enter_context(self, text: str, level: int) -> None:
        """Open a section without a heading block (a manual's option term, whose description
        paragraphs follow under it)."""
        while self._headings and self._headings[-1][0] >= level:
            self._headings.pop()
        self._headings.append((level, clip(clean_inline(text), MAX_HEADING_CHARS)))

    def leave_context(self) -> None:
        if self._headings:
            self._headings.pop()

    def last_text(self) -> str:
        return self._parts[-1] if self._parts else ""

    def add(self, kind: str, text: str, *, raw: bool = False, level: int = 0, rows=(), **provenance) -> Block | None:
        """Add a block; ``raw`` text keeps its line breaks (code keeps its indentation too)."""
        if raw:
            text = clean_code(text) if kind == CODE else "\n".join(filter(None, (clean_inline(line) for line in text.splitlines())))
        else:
            text = clean_inline(text)
        if not text.strip():
            return None
        return self._add(kind, text, level=level, heading_path=self.heading_path, rows=tuple(tuple(r) for r in rows), **provenance)

    def table(self, rows: list[list[str]], **provenance) -> Block | None:
        cleaned = [[clean_inline(cell) for cell in row] for row in rows]
        cleaned = [row for row in cleaned if any(row)]
        if not cleaned:
            return None
        text = "\n".join(TABLE_CELL_SEPARATOR.join(row) for row in cleaned)
        return self.add(TABLE, text, raw=True, rows=cleaned, **provenance)

    def _add(self, kind: str, text: str, **fields) -> Block:
        if self._parts:
            self._parts.append(BLOCK_SEPARATOR)
            self._length += len(BLOCK_SEPARATOR)
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        block = Block(kind=kind, start=start, end=self._length, **fields)
        self.blocks.append(block)
        return block

    def build(self, title: str = "", metadata: dict[str, str] | None = None) -> ParsedDocument:
        return ParsedDocument("".join(self._parts), self.blocks, self.format, clip(clean_inline(title), MAX_TITLE_CHARS), metadata or {})


def first_heading(parsed: ParsedDocument) -> str:
    """The first heading's text, preferring the highest level among the first few blocks."""
    headings = [b for b in parsed.blocks[:40] if b.kind == HEADING]
    if not headings:
        return ""
    top = min(b.level for b in headings)
    block = next(b for b in headings if b.level == top)
    return clip(parsed.text[block.start : block.end], MAX_TITLE_CHARS)
