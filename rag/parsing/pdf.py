"""PDF: layout-aware text with reading order, page numbers and bounding boxes.

Words come with positions and font sizes (pdfium's characters, grouped as pdfplumber grouped
them: rag/parsing/pdf_pages.py, pdf_chars.py); rag/parsing/pdf_layout.py turns each page into lines
in reading order (columns found from vertical gutters that almost no word crosses).  Lines that repeat in the top or bottom margin of many pages (running headers
and footers) and bare page numbers are dropped.  Lines in a font clearly larger than the body
(or short bold lines) are headings; the largest on page 1 is the title when the metadata has
none.  Lines are joined into paragraphs at vertical gaps, indents and font changes, line-end
hyphenation is undone, and a paragraph left open at the bottom of a page continues on the
next.  Small-font notes at a page's foot are footnotes.
"""
from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field

from rag.parsing.blocks import CODE, FOOTNOTE, HEADING, LIST_ITEM, PARAGRAPH, CanonicalBuilder, ParsedDocument, clean_inline
from rag.parsing.pdf_layout import Line as _Line
from rag.parsing.pdf_pages import DEFAULT_ENGINE, read_pages

log = logging.getLogger(__name__)

# Running heads sit in the top or bottom 12% of a page (fancyvrb's at 11.2%); a line there is
# dropped only when it repeats on other pages or is a bare page number.
MARGIN_SHARE = 0.12
HEADING_SIZE_RATIO = 1.15
FOOTNOTE_SIZE_RATIO = 0.92
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?(?:\d{1,4}|[ivxlcdm]{1,7})(?:\s*(?:of|/)\s*\d{1,4})?$", re.IGNORECASE)
# A sentence end inside a line ("... Conclusions. This can"); "Dr. Smith" and "1. Introduction" are not.
_SENTENCES = re.compile(r"[a-z]{2,}[.!?]\s+[A-Z]")
_BULLET = re.compile(r"^(?:[•◦▪▸►‣∙·*–—-]|\(?\d{1,2}[.)]|\(?[a-z][.)])\s")
_FOOTNOTE_START = re.compile(r"^(?:\d{1,3}|[*†‡§¶])\s?\S")
_DOT_LEADER = re.compile(r"(?:\. ?){5,}")  # a table of contents' ". . . . . 17"
# A code listing's line numbers, set small beside it: noise glued to the prose next to the
# listing ("\\end{Verbatim} 4 The appearance of ...") in the fancyvrb manual.
_LINE_NUMBER = re.compile(r"^\d{1,4}(?: \d{1,4})*$")
_BAD_TITLES = re.compile(r"^(?:untitled|microsoft word|document\d*|.*\.(?:dvi|tex|docx?|pdf|ps))", re.IGNORECASE)


@dataclass
class _Block:
    kind: str
    lines: list[_Line] = field(default_factory=list)
    level: int = 0
    text: str = ""  # the lines joined, hyphenation undone


def parse_pdf(data: bytes, max_pages: int | None = None, time_budget_s: float | None = None, fmt: str = "pdf",
              engine: str = DEFAULT_ENGINE) -> ParsedDocument:
    """``engine``: "pdfium" (the default: 9x the pages/s on eval/realdocs) or "pdfplumber"
    (rag/parsing/pdf_pages.py)."""
    pages, heights, info_title = read_pages(data, max_pages, time_budget_s, engine)
    lines = _drop_running_lines(pages, heights)
    body = _body_size(lines)
    title = _title(info_title, lines, body)
    blocks = _blocks(lines, body, heights, _vocabulary(lines))
    return _build(blocks, title, fmt)


def _drop_running_lines(pages: list[list[_Line]], heights: list[float]) -> list[_Line]:
    def key(line: _Line) -> str:
        return re.sub(r"\d+", "#", line.text.lower())

    def in_margin(line: _Line) -> bool:
        height = heights[line.page - 1]
        return line.top < MARGIN_SHARE * height or line.bottom > (1 - MARGIN_SHARE) * height

    repeats = Counter(k for page in pages for k in {key(line) for line in page if in_margin(line)})
    # Chapter-specific running heads ("4 VERBATIM ENVIRONMENTS") repeat on a few pages only.
    threshold = 2 if len(pages) < 6 else 3
    kept = []
    for page in pages:
        for line in page:
            if in_margin(line) and (repeats[key(line)] >= threshold or _PAGE_NUMBER.match(line.text.strip())):
                continue
            if _DOT_LEADER.search(line.text):
                continue  # a table of contents line: the sections themselves are indexed
            kept.append(line)
    return kept


def _body_size(lines: list[_Line]) -> float:
    sizes: Counter[float] = Counter()
    for line in lines:
        sizes[line.size] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 10.0


def _title(info_title: str, lines: list[_Line], body: float) -> str:
    title = clean_inline(info_title)
    if title and not _BAD_TITLES.match(title) and len(title) > 3:
        return title
    first = [line for line in lines if line.page == 1]
    if not first:
        return ""
    largest = max(line.size for line in first)
    if largest < body * HEADING_SIZE_RATIO:
        return ""
    return " ".join(line.text for line in first if line.size == largest)[:200]


def _vocabulary(lines: list[_Line]) -> set[str]:
    """Words seen inside lines (not at a line's ends, where hyphenation fragments sit), and
    the hyphenated compounds among them ("state-of-the-art")."""
    words: set[str] = set()
    for line in lines:
        for token in line.text.split()[1:-1]:
            token = token.strip(".,;:()[]\"'“”‘’").lower()
            words.add(token)
            words.update(re.findall(r"[a-z]+", token))
    return words


def _blocks(lines: list[_Line], body: float, heights: list[float], vocabulary: set[str]) -> list[_Block]:
    blocks: list[_Block] = []
    sizes_above = sorted({line.size for line in lines if line.size >= body * HEADING_SIZE_RATIO}, reverse=True)
    previous: _Line | None = None
    deferred: list[_Block] = []  # footnotes of a paragraph that goes on over the page: they follow it
    lines = _without_line_numbers(lines, body)
    for i, line in enumerate(lines):
        kind, level = _line_kind(line, body, sizes_above, heights)
        if kind == CODE and not _beside_code(lines, i):
            # A lone typewriter line is a wrapped inline term ("use the / figure* / or table*
            # environment") or a reference card's command cell, not an example.
            kind = PARAGRAPH
        current = blocks[-1] if blocks else None
        if current is not None and current.kind == FOOTNOTE and kind == PARAGRAPH and line.page != current.lines[-1].page:
            host = _interrupted(blocks)
            # Only a sentence cut mid-word or mid-phrase ("... where the weather" / "turned before"):
            # a code line such as "\end{Verbatim}" is not carried over a footnote.
            if host is not None and re.search(r"[A-Za-z,;-]$", blocks[host].lines[-1].text) and line.text[:1].islower() \
                    and _continues(blocks[host], blocks[host].lines[-1], line, kind, body):
                deferred += blocks[host + 1:]
                del blocks[host + 1:]
                blocks[host].lines.append(line)
                previous = line
                continue
        if current is not None and previous is not None and _continues(current, previous, line, kind, body):
            current.lines.append(line)
        else:
            blocks += deferred
            deferred = []
            if kind == PARAGRAPH and _BULLET.match(line.text):
                kind = LIST_ITEM
            blocks.append(_Block(kind, [line], level))
        previous = line
    blocks += deferred
    for block in blocks:
        block.text = _code_text(block.lines) if block.kind == CODE else _join(_cells_first(block.lines), vocabulary)
    _demote_front_matter(blocks)
    return blocks


def _beside_code(lines: list[_Line], i: int) -> bool:
    """Is the line before or after ``lines[i]`` on its page typewriter text?"""
    return any(0 <= j < len(lines) and lines[j].mono and lines[j].page == lines[i].page for j in (i - 1, i + 1))


def _without_line_numbers(lines: list[_Line], body: float) -> list[_Line]:
    """Lines less the small bare numbers beside a code listing (its line numbers)."""
    return [line for i, line in enumerate(lines)
            if not (line.size < body * 0.95 and _LINE_NUMBER.match(line.text) and _beside_code(lines, i))]


def _cells_first(lines: list[_Line]) -> list[str]:
    """A block's lines as read; an entry of a reference card ("command | what it does", the
    description left-aligned at its own x, the two cells centred on each other) as its left cell
    and then its right one.  Row by row, the Debian card read "Install newest versions of all apt
    upgrade packages currently installed."  Prose never has a line starting 15% into the block
    with no word of any line crossing that x."""
    left_edge, right_edge = min(line.x0 for line in lines), max(line.x1 for line in lines)
    starts = [line.x0 for line in lines if line.x0 > left_edge + 0.15 * (right_edge - left_edge)]
    texts = [line.text for line in lines]
    if len(lines) < 2 or not starts or len({line.page for line in lines}) > 1:
        return texts
    gutter = min(starts) - 0.5
    words = [w for line in lines for w in line.words]
    if any(x0 < gutter < x1 for x0, x1, _ in words):
        return texts
    sides = [([t for x0, x1, t in line.words if x1 <= gutter], [t for x0, _, t in line.words if x0 >= gutter]) for line in lines]
    description_starts = [min(x0 for x0, _, _ in line.words if x0 >= gutter) for line, (_, right) in zip(lines, sides) if right]
    if any(x0 - gutter > 2 for x0 in description_starts) or all(left and right for left, right in sides) or not any(left for left, _ in sides):
        return texts  # descriptions not aligned, or every row whole (row order is then right)
    return [" ".join(left) for left, _ in sides if left] + [" ".join(right) for _, right in sides if right]


def _code_text(lines: list[_Line]) -> str:
    """A code block keeps its lines and their indentation (a typewriter glyph is ~0.6 em wide)."""
    left = min(line.x0 for line in lines)
    return "\n".join(" " * round((line.x0 - left) / (0.6 * line.size)) + line.text for line in lines)


def _interrupted(blocks: list[_Block]) -> int | None:
    """The paragraph the trailing footnotes at a page's foot interrupt (its index), if any."""
    i = len(blocks) - 1
    while i >= 0 and blocks[i].kind == FOOTNOTE:
        i -= 1
    return i if i >= 0 and blocks[i].kind in (PARAGRAPH, LIST_ITEM) and blocks[i].lines[-1].page == blocks[-1].lines[-1].page else None


def _demote_front_matter(blocks: list[_Block]) -> None:
    """Large or bold lines on page 1 before the first body paragraph (authors, affiliations,
    dates) are not sections: only the first of them (the title) stays a heading."""
    seen_title = False
    for block in blocks:
        if block.lines[0].page != 1:
            return
        if block.kind == PARAGRAPH and len(block.text.split()) >= 25:
            return
        if block.kind == HEADING:
            if seen_title:
                block.kind = PARAGRAPH
            seen_title = True


def _heading_shaped(text: str) -> bool:
    """Could this line be a heading at all?  Not a bullet item ("• There have been many other bug
    fixes" became a section), not the middle of a sentence (a lower-case start: "pose, Method,
    Results, and Conclusions. This can"), not two sentences."""
    text = text.strip()
    return bool(text) and not _BULLET.match(text) and not text[0].islower() and not _SENTENCES.search(text)


def _line_kind(line: _Line, body: float, sizes_above: list[float], heights: list[float]) -> tuple[str, int]:
    words = len(line.text.split())
    shaped = _heading_shaped(line.text)
    if line.size >= body * HEADING_SIZE_RATIO and words <= 20 and shaped:
        return HEADING, 1 + min(sizes_above.index(line.size) if line.size in sizes_above else 0, 3)
    if line.bold and not line.mono and shaped and words <= 12 and not line.text.rstrip().endswith((".", ",", ";")) and line.size >= body * 0.95:
        return HEADING, len(sizes_above) + 1 if len(sizes_above) < 5 else 5
    near_foot = line.top > 0.7 * heights[line.page - 1]
    if near_foot and line.size <= body * FOOTNOTE_SIZE_RATIO and _FOOTNOTE_START.match(line.text):
        return FOOTNOTE, 0
    return (CODE if line.mono else PARAGRAPH), 0


def _continues(block: _Block, previous: _Line, line: _Line, kind: str, body: float) -> bool:
    """Does ``line`` continue ``block`` (whose last line is ``previous``)?"""
    if kind == HEADING or block.kind == HEADING:
        return kind == block.kind == HEADING and line.page == previous.page and line.size == previous.size and line.top - previous.bottom < line.size
    if kind == FOOTNOTE:
        return False
    if block.kind == FOOTNOTE:
        return line.size <= body * FOOTNOTE_SIZE_RATIO and line.page == previous.page and not _FOOTNOTE_START.match(line.text)
    if (kind == CODE) != (block.kind == CODE):
        return False  # prose never runs into an example or out of one (over a page break neither)
    if kind == CODE:
        gap = line.top - previous.bottom
        return line.page != previous.page or line.column != previous.column or -line.size <= gap <= 0.9 * line.size
    if _BULLET.match(line.text):
        return False
    if abs(line.size - previous.size) > 0.6:
        return False
    ended = previous.text.rstrip().endswith((".", "!", "?", ":", "”", '"'))
    if line.mono != previous.mono and abs(line.x0 - previous.x0) <= 1 and (ended or all(l.mono for l in block.lines)):
        return False  # a one-line example set off from its prose ("... a .tex file:" / "\\documentclass{mnras}" / "Then ...")
    if line.page != previous.page or line.column != previous.column:
        # A paragraph left open at the foot of a page or column goes on at the top of the next.
        return not ended or line.text[:1].islower()
    gap = line.top - previous.bottom
    if gap > 0.9 * line.size or gap < -line.size:
        return False
    indent = line.x0 - previous.x0
    if indent > 0.8 * line.size and ended and block.kind != LIST_ITEM:
        return False  # a first-line indent starts a paragraph
    short = previous.x1 < previous.col_x1 - 0.25 * (previous.col_x1 - previous.col_x0)
    if ended and short and previous.column == line.column and line.x0 <= previous.x0 + 1:
        return False  # a short last line ending a sentence closes the paragraph
    return True


def _join(lines: list[str], vocabulary: set[str]) -> str:
    """Lines of one block as a paragraph: a hyphen at a line end between letters is undone when
    the whole word occurs elsewhere in the document or the hyphenated form does not ("infor-
    mation" -> "information", "state-of-the-art" kept)."""
    out: list[str] = []
    for i, text in enumerate(lines):
        text = text.strip()
        if i + 1 < len(lines) and len(text) > 1 and text[-1] in "-\u00ad\u2010" and text[-2].isalpha():
            following = lines[i + 1].strip()
            head = re.search(r"([A-Za-z]+)-?$", text[:-1] + "-")
            tail = re.match(r"[A-Za-z]+", following)
            if text[-1] != "-" or (tail and following[:1].islower() and head and _dehyphenate(head.group(1), tail.group(0), vocabulary)):
                out.append(text[:-1])
                continue
            out.append(text)
            continue
        out.append(text + " ")
    return clean_inline("".join(out))


def _dehyphenate(head: str, tail: str, vocabulary: set[str]) -> bool:
    """Undo a line-end hyphen unless the document writes the hyphenated compound elsewhere
    (or never the joined word while both halves are words of their own).  The hyphenated form
    wins over the joined one: a LaTeX guide writes both the class option "onecolumn" and the prose
    "one-column", and the prose one broken at its hyphen must keep it."""
    joined, compound = (head + tail).lower(), f"{head}-{tail}".lower()
    if compound in vocabulary:
        return False
    if joined in vocabulary:
        return True
    return not (head.lower() in vocabulary and tail.lower() in vocabulary and len(head) > 2 and len(tail) > 2)


def _build(blocks: list[_Block], title: str, fmt: str) -> ParsedDocument:
    builder = CanonicalBuilder(fmt)
    for block in blocks:
        pages = tuple(sorted({line.page for line in block.lines}))
        boxes = []
        for page in pages:
            on_page = [line for line in block.lines if line.page == page]
            boxes.append((float(page), round(min(l.x0 for l in on_page), 1), round(min(l.top for l in on_page), 1),
                          round(max(l.x1 for l in on_page), 1), round(max(l.bottom for l in on_page), 1)))
        if block.kind == HEADING:
            builder.heading(block.text, block.level, pages=pages, bboxes=tuple(boxes))
        else:
            builder.add(block.kind, block.text, raw=block.kind == CODE, pages=pages, bboxes=tuple(boxes))
    return builder.build(title=title)
