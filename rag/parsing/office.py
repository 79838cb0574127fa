"""Word (.docx, python-docx) and PowerPoint (.pptx, python-pptx) documents.

Word: body paragraphs and tables in document order; headings from the paragraph style
("Heading 1".."Heading 9", "Title"), list items from list styles or numbering, captions and
quotes from their styles; the title from the core properties, else the Title-styled
paragraph, else the first heading.  PowerPoint: one section per slide (its title), text
frames as paragraphs or list items by indent level, tables as rows, speaker notes as
paragraphs; ``pages`` holds the slide number.
"""
from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from rag.errors import DocumentTooLarge, UnsupportedDocument
from rag.parsing.blocks import CAPTION, CODE, LIST_ITEM, PARAGRAPH, QUOTE, CanonicalBuilder, ParsedDocument, first_heading
from rag.parsing.bounds import clip

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
# A .docx is a zip: refuse one whose members inflate past this (a zip bomb), before parsing.
# The sizes are the central directory's: Python's zipfile never returns more than a member's
# declared size (a member that inflates further fails its CRC check: 415, not a bomb).
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
# The XML parts (what lxml builds a tree of: ~10-15x their size in memory) may inflate to this
# together: 578 KB of .docx whose document.xml unpacked to 190 MB took 2.98 GB RSS (issue 20).
# A 1,000-page Word document's document.xml is ~20-40 MB; media (images) are not parsed.
MAX_XML_BYTES = 64 * 1024 * 1024
# Shapes over all slides: python-pptx builds objects per shape (~50 us and ~10 KB each): a
# 226 KB .pptx of 110,000 text boxes took 1.54 GB RSS (issue 20).  Real decks have a few
# dozen per slide.
MAX_PPTX_SHAPES = 20_000
_SHAPE = re.compile(rb"<p:(?:sp|graphicFrame|pic|cxnSp|grpSp)[ >]")


def _check_zip(data: bytes, what: str) -> zipfile.ZipFile:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise UnsupportedDocument(f"broken {what} file: not a zip archive") from exc
    total = sum(info.file_size for info in infos)
    if total > MAX_UNZIPPED_BYTES:
        raise DocumentTooLarge(f"{what} file unpacks to {total} bytes, more than {MAX_UNZIPPED_BYTES}")
    xml = sum(info.file_size for info in infos if info.filename.endswith((".xml", ".rels")))
    if xml > MAX_XML_BYTES:
        raise DocumentTooLarge(f"{what} file's XML unpacks to {xml} bytes, more than {MAX_XML_BYTES}")
    return archive


def _count_shapes(archive: zipfile.ZipFile) -> None:
    """Refuse a deck of more than MAX_PPTX_SHAPES shapes, counted in the slide XML (a linear scan,
    bounded by MAX_XML_BYTES) before python-pptx builds them."""
    shapes = 0
    for info in archive.infolist():
        if info.filename.startswith("ppt/slides/slide") and info.filename.endswith(".xml"):
            try:
                shapes += len(_SHAPE.findall(archive.read(info)))
            except (zipfile.BadZipFile, ValueError, OSError) as exc:
                raise UnsupportedDocument(f"broken PowerPoint file: {exc}") from exc
            if shapes > MAX_PPTX_SHAPES:
                raise DocumentTooLarge(f"PowerPoint file has more than {MAX_PPTX_SHAPES} shapes")


def parse_docx(data: bytes, fmt: str = "docx") -> ParsedDocument:
    _check_zip(data, "Word")
    try:
        import docx
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - python-docx raises KeyError, lxml errors, ...
        raise UnsupportedDocument(f"broken Word file: {exc or type(exc).__name__}") from exc
    builder = CanonicalBuilder(fmt)
    styled_title = ""
    # Style name by style id: python-docx looks a paragraph's style up among all styles each
    # time (1.3-1.7 ms a paragraph on real styles.xml: 66,000 paragraphs took > 99 CPU-s).
    style_names: dict[str | None, str] = {}
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "tbl":
            table = Table(element, document)
            builder.table([[_cell_text(cell) for cell in _unique_cells(row)] for row in table.rows])
            continue
        if tag != "p":
            continue
        text = paragraph_text(element)
        if not text.strip():
            continue
        style_id = element.pPr.style if element.pPr is not None else None
        if style_id not in style_names:
            found = Paragraph(element, document).style
            style_names[style_id] = (found.name if found is not None else "") or ""
        style = style_names[style_id]
        lowered = style.lower()
        heading = _HEADING_STYLE.match(style)
        if lowered == "title":
            styled_title = styled_title or text
            builder.heading(text, 1)
        elif heading:
            builder.heading(text, int(heading.group(1)) + 1)
        elif any(word in lowered for word in ("code", "preformatted", "verbatim", "source")):
            builder.add(CODE, text, raw=True)
        elif "list" in lowered or element.pPr is not None and element.pPr.numPr is not None:
            builder.add(LIST_ITEM, text)
        elif "caption" in lowered:
            builder.add(CAPTION, text)
        elif "quote" in lowered:
            builder.add(QUOTE, text)
        else:
            builder.add(PARAGRAPH, text)
    parsed = builder.build()
    core_title = (document.core_properties.title or "").strip()
    parsed.title = core_title or styled_title.strip() or first_heading(parsed)
    if document.core_properties.author:
        parsed.metadata["author"] = document.core_properties.author
    return parsed


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
# Run content as Word shows it.  python-docx's Paragraph.text reads only runs that are direct
# children or in hyperlinks: text inside tracked insertions (w:ins), smart tags, content controls
# (w:sdt) and simple fields was lost, and with it the hyphens of "day-to-day" typed there.
_RUN_CONTENT = {f"{_W}t": None, f"{_W}tab": "\t", f"{_W}br": "\n", f"{_W}cr": "\n", f"{_W}noBreakHyphen": "-",
                f"{_W}softHyphen": "", f"{_W}ptab": "\t"}
_SKIPPED = {f"{_W}del", f"{_W}moveFrom", f"{_W}pPr", f"{_W}rPr", f"{_W}instrText", f"{_W}delText"}


def paragraph_text(element) -> str:
    """A w:p element's text in document order, every run included (see _RUN_CONTENT)."""
    parts: list[str] = []

    def walk(node) -> None:
        for child in node:
            tag = child.tag
            if not isinstance(tag, str) or tag in _SKIPPED or tag == f"{_W}p":
                continue
            if tag in _RUN_CONTENT:
                fixed = _RUN_CONTENT[tag]
                parts.append((child.text or "") if fixed is None else fixed)
            elif tag == f"{_W}sym":
                parts.append(_symbol(child.get(f"{_W}char") or ""))
            else:
                walk(child)

    walk(element)
    return "".join(parts)


def _symbol(code: str) -> str:
    """A w:sym character: symbol fonts put ASCII at U+F020..U+F07E (the Symbol font's hyphen, dash...)."""
    try:
        value = int(code, 16)
    except ValueError:
        return ""
    if 0xF020 <= value <= 0xF07E:
        value -= 0xF000
    return chr(value) if 0x20 <= value < 0xD800 or 0xE000 <= value <= 0xFFFD else ""


def _cell_text(cell) -> str:
    return "\n".join(paragraph_text(p) for p in cell._tc.iterchildren(f"{_W}p"))


def _unique_cells(row):
    """A merged cell appears once per grid column it spans; keep it once."""
    seen, cells = set(), []
    for cell in row.cells:
        if id(cell._tc) not in seen:
            seen.add(id(cell._tc))
            cells.append(cell)
    return cells


# A "title" longer than this is body text in a title placeholder (a slide whose list was typed
# into its title box), not a heading.
SLIDE_TITLE_MAX_WORDS = 20


def _frame_paragraphs(frame) -> list[tuple[str, int]]:
    """(text, indent level) of a text frame's non-empty paragraphs."""
    out = []
    for paragraph in frame.paragraphs:
        text = "".join(run.text for run in paragraph.runs)
        if text.strip():
            out.append((text, paragraph.level))
    return out


def parse_pptx(data: bytes, fmt: str = "pptx") -> ParsedDocument:
    _count_shapes(_check_zip(data, "PowerPoint"))
    try:
        from pptx import Presentation

        presentation = Presentation(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001
        raise UnsupportedDocument(f"broken PowerPoint file: {exc or type(exc).__name__}") from exc
    builder = CanonicalBuilder(fmt)
    deck_title = first_text = ""
    for number, slide in enumerate(presentation.slides, start=1):
        where: dict[str, Any] = {"pages": (number,)}
        title_shape = slide.shapes.title
        # The title placeholder's first line is the slide's heading; any further lines in it (a list
        # typed into the title box: python-pptx reports the placeholder as the title) are body text,
        # so they reach passages instead of living only in the section path.
        lines = _frame_paragraphs(title_shape.text_frame) if title_shape is not None and title_shape.has_text_frame else []
        if lines and len(lines[0][0].split()) <= SLIDE_TITLE_MAX_WORDS:
            title, body = lines[0][0], lines[1:]
            deck_title = deck_title or title
        else:
            title, body = "", lines
        builder.heading(title or f"Slide {number}", 1, **where)
        for text, level in body:
            builder.add(LIST_ITEM if level > 0 or len(body) > 1 else PARAGRAPH, text, level=level, **where)
            first_text = first_text or text
        for shape in slide.shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if getattr(shape, "has_table", False) and shape.has_table:
                builder.table([[cell.text for cell in row.cells] for row in shape.table.rows], **where)
            elif shape.has_text_frame:
                for text, level in _frame_paragraphs(shape.text_frame):
                    builder.add(LIST_ITEM if level > 0 else PARAGRAPH, text, level=level, **where)
                    first_text = first_text or text
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            builder.add(PARAGRAPH, slide.notes_slide.notes_text_frame.text, **where)
    parsed = builder.build()
    # Never "Slide 1": the properties' title, else the first real slide title, else the deck's first line.
    fallback = clip(first_text.strip().split("\n")[0], 120) if first_text.strip() else ""
    parsed.title = (presentation.core_properties.title or "").strip() or deck_title.strip() or fallback
    return parsed
