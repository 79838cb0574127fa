"""Stage 1b: file bytes -> typed blocks over a canonical text (see blocks.py).

One parser per format, chosen by the file's extension in ``FORMATS``, the one table of what the
service reads: ingestion (rag/ingest.py) and the README's "Supported formats" table follow it
(tests/test_formats.py checks the README).  Each parser is linear in its input or bounded by the
limits it is given (pages, parse time, unpacked bytes, HTML elements and depth).  Libraries,
chosen by measurement (eval/RESULTS.md, "Real documents"): markdown-it-py (CommonMark + GFM
tables), BeautifulSoup on html.parser (keeps source positions), pdfium through pypdfium2 (the
characters with their boxes and fonts, grouped into words the way pdfplumber does: 9x faster,
eval/realdocs/extractors.md), python-docx, python-pptx.  Each is imported on first use, so a text
upload never loads pdfium.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rag.errors import UnsupportedDocument
from rag.parsing.blocks import BLOCK_KINDS, Block, ParsedDocument

__all__ = ["BLOCK_KINDS", "Block", "FORMATS", "FileFormat", "ParsedDocument", "SUPPORTED_SUFFIXES", "decode_text", "format_of",
           "parse_bytes", "parse_plain_text"]


@dataclass(frozen=True)
class FileFormat:
    """One readable format.  A text format's ``parse`` takes the decoded text (ingestion decodes
    once and checks its lines first); a binary one's takes the bytes and the PDF limits."""

    name: str  # ParsedDocument.format
    suffixes: tuple[str, ...]
    binary: bool
    parse: Callable[..., ParsedDocument]
    # HTML is often minified onto one line: its canonical text (one line per block) is checked
    # against RAG_MAX_LINE_CHARS instead of the file's lines.
    one_line_source: bool = False


def _text(text: str) -> ParsedDocument:
    from rag.parsing.plaintext import parse_text

    return parse_text(text, "txt")


def _markdown(text: str) -> ParsedDocument:
    from rag.parsing.markdown import parse_markdown

    return parse_markdown(text)


def _html(text: str) -> ParsedDocument:
    from rag.parsing.html import parse_html

    return parse_html(text)


def _pdf(data: bytes, max_pdf_pages: int | None, time_budget_s: float | None) -> ParsedDocument:
    from rag.parsing.pdf import parse_pdf

    return parse_pdf(data, max_pages=max_pdf_pages, time_budget_s=time_budget_s)


def _docx(data: bytes, max_pdf_pages: int | None, time_budget_s: float | None) -> ParsedDocument:
    from rag.parsing.office import parse_docx

    return parse_docx(data)


def _pptx(data: bytes, max_pdf_pages: int | None, time_budget_s: float | None) -> ParsedDocument:
    from rag.parsing.office import parse_pptx

    return parse_pptx(data)


FORMATS = (
    FileFormat("txt", (".txt", ".text"), binary=False, parse=_text),
    FileFormat("md", (".md", ".markdown"), binary=False, parse=_markdown),
    FileFormat("html", (".html", ".htm", ".xhtml"), binary=False, parse=_html, one_line_source=True),
    FileFormat("pdf", (".pdf",), binary=True, parse=_pdf),
    FileFormat("docx", (".docx",), binary=True, parse=_docx),
    FileFormat("pptx", (".pptx",), binary=True, parse=_pptx),
)
_BY_SUFFIX = {suffix: fmt for fmt in FORMATS for suffix in fmt.suffixes}
SUPPORTED_SUFFIXES = frozenset(_BY_SUFFIX)


def format_of(filename: str) -> FileFormat:
    """The format of a file by its extension; raises UnsupportedDocument."""
    suffix = Path(filename).suffix.lower()
    fmt = _BY_SUFFIX.get(suffix)
    if fmt is None:
        raise UnsupportedDocument(f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}")
    return fmt


def parse_bytes(filename: str, data: bytes, *, max_pdf_pages: int | None = None, time_budget_s: float | None = None) -> ParsedDocument:
    """Parse a file's bytes by its extension; raises UnsupportedDocument (or DocumentTooLarge)."""
    fmt = format_of(filename)
    if fmt.binary:
        return fmt.parse(data, max_pdf_pages, time_budget_s)
    return fmt.parse(decode_text(data))


def parse_plain_text(text: str) -> ParsedDocument:
    """Text given directly (a JSON upload, a SQuAD context) is read as a .txt file."""
    return _text(text)


def decode_text(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise UnsupportedDocument("binary data in a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedDocument(f"not valid UTF-8 text (byte {exc.start})") from exc
    # Offsets (source_start/source_end) count characters of the file with "\r\n" kept as is.
    return text
