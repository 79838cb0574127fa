"""Stage 1b: file bytes -> typed blocks over a canonical text (see blocks.py).

One parser per format, chosen by the file's extension; each is linear in its input or bounded
by the limits it is given (pages, parse time, unpacked bytes, HTML elements and depth).
Libraries, chosen by measurement (eval/RESULTS.md, "Real documents"): markdown-it-py
(CommonMark + GFM tables), BeautifulSoup on html.parser (keeps source positions),
pdfplumber (words with positions and font sizes), python-docx, python-pptx.
"""
from __future__ import annotations

from pathlib import Path

from rag.errors import UnsupportedDocument
from rag.parsing.blocks import BLOCK_KINDS, Block, ParsedDocument

TEXT_SUFFIXES = {".txt", ".text"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
PDF_SUFFIXES = {".pdf"}
DOCX_SUFFIXES = {".docx"}
PPTX_SUFFIXES = {".pptx"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES | DOCX_SUFFIXES | PPTX_SUFFIXES

__all__ = ["BLOCK_KINDS", "Block", "ParsedDocument", "SUPPORTED_SUFFIXES", "decode_text", "parse_bytes", "parse_decoded", "parse_plain_text"]


def parse_bytes(filename: str, data: bytes, *, max_pdf_pages: int | None = None, time_budget_s: float | None = None) -> ParsedDocument:
    """Parse a file's bytes by its extension; raises UnsupportedDocument (or DocumentTooLarge)."""
    suffix = Path(filename).suffix.lower()
    if suffix in TEXT_SUFFIXES | MARKDOWN_SUFFIXES | HTML_SUFFIXES:
        return parse_decoded(suffix, decode_text(data))
    if suffix in PDF_SUFFIXES:
        from rag.parsing.pdf import parse_pdf

        return parse_pdf(data, max_pages=max_pdf_pages, time_budget_s=time_budget_s)
    if suffix in DOCX_SUFFIXES:
        from rag.parsing.office import parse_docx

        return parse_docx(data)
    if suffix in PPTX_SUFFIXES:
        from rag.parsing.office import parse_pptx

        return parse_pptx(data)
    raise UnsupportedDocument(f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}")


def parse_decoded(suffix: str, text: str) -> ParsedDocument:
    """A text format (.txt, .md, .html) already decoded (ingestion decodes once to check lines first)."""
    if suffix in MARKDOWN_SUFFIXES:
        from rag.parsing.markdown import parse_markdown

        return parse_markdown(text)
    if suffix in HTML_SUFFIXES:
        from rag.parsing.html import parse_html

        return parse_html(text)
    from rag.parsing.plaintext import parse_text

    return parse_text(text, suffix.lstrip(".") if suffix != ".text" else "txt")


def parse_plain_text(text: str) -> ParsedDocument:
    """Text given directly (a JSON upload, a SQuAD context) is read as a .txt file."""
    from rag.parsing.plaintext import parse_text

    return parse_text(text)


def decode_text(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise UnsupportedDocument("binary data in a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedDocument(f"not valid UTF-8 text (byte {exc.start})") from exc
    # Offsets (source_start/source_end) count characters of the file with "\r\n" kept as is.
    return text
