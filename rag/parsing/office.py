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

from rag.errors import DocumentTooLarge, UnsupportedDocument
from rag.parsing.blocks import CAPTION, CODE, LIST_ITEM, PARAGRAPH, QUOTE, CanonicalBuilder, ParsedDocument, first_heading
from rag.parsing.bounds import clip

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
# A .docx is a zip: refuse one whose members inflate past this (a zip bomb), before parsing.
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024


def _check_zip(data: bytes, what: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError) as exc:
        raise UnsupportedDocument(f"broken {what} file: not a zip archive") from exc
    if total > MAX_UNZIPPED_BYTES:
        raise DocumentTooLarge(f"{what} file unpacks to {total} bytes, more than {MAX_UNZIPPED_BYTES}")


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
    for element in document.element.body.iterchildren():
        tag = element.tag.rsplit("}", 1)[-1]
        if tag == "tbl":
            table = Table(element, document)
            builder.table([[cell.text for cell in _unique_cells(row)] for row in table.rows])
            continue
        if tag != "p":
            continue
        paragraph = Paragraph(element, document)
        text = paragraph.text
        if not text.strip():
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
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
    _check_zip(data, "PowerPoint")
    try:
        from pptx import Presentation

        presentation = Presentation(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001
        raise UnsupportedDocument(f"broken PowerPoint file: {exc or type(exc).__name__}") from exc
    builder = CanonicalBuilder(fmt)
    deck_title = first_text = ""
    for number, slide in enumerate(presentation.slides, start=1):
        where = {"pages": (number,)}
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
