"""A PDF's pages as lines (rag/parsing/pdf_layout.py), read by pdfium (the default) or pdfplumber,
within the page and time limits, broken and encrypted files refused with one message each.

pdfium (pypdfium2, already installed as pdfplumber's renderer) feeds the same layout code the
same words (rag/parsing/pdf_chars.py): the three eval/realdocs PDFs, 37 pages, at 21.8 pages/s
against 2.4 with pdfplumber, medians of 5 interleaved runs on 2 busy cores, the same evidence
kept (eval/realdocs/extractors.md).  cProfile of pdfplumber's path: 34% pdfminer's content-stream
interpreter in Python (alone it reads 9.1 pages/s: no pdfminer-based route reaches 5x), 31% the
quadratic sort in dedupe_chars, 24% turning pdfminer's objects into dicts, 7% words and layout.
pdfplumber stays selectable (``engine``) for that comparison.
"""
from __future__ import annotations

import io
import logging
import math
import re
import threading
import time
from functools import partial

from rag.errors import DocumentTooLarge, UnsupportedDocument
from rag.parsing.pdf_layout import X_TOLERANCE_RATIO, Line, page_lines

log = logging.getLogger(__name__)

ENGINES = ("pdfium", "pdfplumber")
DEFAULT_ENGINE = "pdfium"
# A page-tree node's declared page count, read from the raw bytes before the tree is parsed:
# a /Pages node listing one page 2,000,000 times was refused only after 35.5 CPU-s
# (issue 20).  Trees inside compressed object streams are not visible here; the parse sandbox's
# CPU limit bounds those (rag/parse_pool.py).
_COUNT = re.compile(rb"/Count\s+(\d{1,12})")
_COUNTS_INSPECTED = 100
# pdfium is not thread-safe (one library state per process): uploads parsed in threads take
# turns on each call into it; the layout work in Python runs outside the lock.
_PDFIUM = threading.Lock()
_PDFIUM_PASSWORD_ERROR = 4  # FPDF_ERR_PASSWORD


def declared_pages(data: bytes, limit: int) -> int | None:
    """The /Count of a page-tree node (an object with /Kids) over ``limit``, if the file shows one
    uncompressed; outlines also have /Count (no /Kids).  At most _COUNTS_INSPECTED counts over the
    limit are looked at, each within its object: linear in the file."""
    inspected = 0
    for match in _COUNT.finditer(data):
        count = int(match.group(1))
        if count <= limit:
            continue
        start = max(0, data.rfind(b" obj", 0, match.start()))
        end = data.find(b"endobj", match.end())
        if data.find(b"/Kids", start, end if end >= 0 else len(data)) >= 0:
            return count
        inspected += 1
        if inspected >= _COUNTS_INSPECTED:
            return None
    return None


def read_pages(data: bytes, max_pages: int | None, time_budget_s: float | None,
               engine: str = DEFAULT_ENGINE) -> tuple[list[list[Line]], list[float], str]:
    """Each page's lines in reading order, each page's height, and the info dictionary's Title."""
    if engine not in ENGINES:
        raise ValueError(f"unknown PDF engine {engine!r}: one of {', '.join(ENGINES)}")
    started = time.monotonic()
    declared = declared_pages(data, max_pages) if max_pages is not None else None
    if declared is not None:
        raise DocumentTooLarge(f"PDF's page tree declares {declared} pages, more than the limit of {max_pages} (RAG_MAX_PDF_PAGES)")
    read = _read_pdfium if engine == "pdfium" else _read_pdfplumber
    pages, heights, title = read(data, max_pages, started, time_budget_s)
    if pages and all(page is None for page in pages):
        raise UnsupportedDocument("broken PDF: no page could be read")
    lines = [page or [] for page in pages]
    if not any(lines):
        raise UnsupportedDocument("PDF has no text layer (scanned pages?): run OCR first (e.g. ocrmypdf) and index the result")
    return lines, heights, title


def _refused(exc: BaseException) -> UnsupportedDocument:
    name = " ".join(type(e).__name__ for e in (exc, *exc.args) if isinstance(e, BaseException)) or type(exc).__name__
    if "Password" in name or "Encrypt" in name or getattr(exc, "err_code", None) == _PDFIUM_PASSWORD_ERROR:
        return UnsupportedDocument("PDF is encrypted (it needs a password)")
    return UnsupportedDocument(f"broken PDF: {exc or name}")


def _check(count: int, max_pages: int | None) -> None:
    if max_pages is not None and count > max_pages:
        raise DocumentTooLarge(f"PDF has {count} pages, more than the limit of {max_pages} (RAG_MAX_PDF_PAGES)")


def _in_budget(number: int, count: int, started: float, time_budget_s: float | None) -> None:
    if time_budget_s is not None and time.monotonic() - started > time_budget_s:
        raise _too_slow(number, count, time_budget_s)


def _too_slow(number: int, count: int, time_budget_s: float | None) -> DocumentTooLarge:
    return DocumentTooLarge(f"PDF parsing took more than {time_budget_s:.0f} s at page {number} of {count} (RAG_MAX_PARSE_SECONDS)")


def _unreadable(number: int, exc: Exception) -> None:
    log.warning("PDF page %d unreadable, left out: %s", number, exc or type(exc).__name__)


def _read_pdfium(data: bytes, max_pages: int | None, started: float,
                 time_budget_s: float | None) -> tuple[list[list[Line] | None], list[float], str]:
    import pypdfium2
    import pypdfium2.raw as raw

    from rag.parsing.pdf_chars import PastDeadline, dedupe, extract_words, page_chars

    with _PDFIUM:
        try:
            document = pypdfium2.PdfDocument(data)
        except Exception as exc:  # noqa: BLE001 - PdfiumError for every malformed file
            raise _refused(exc) from exc
    try:
        count = len(document)
        _check(count, max_pages)
        pages: list[list[Line] | None] = []
        heights: list[float] = []
        deadline = started + time_budget_s if time_budget_s is not None else math.inf
        for number in range(1, count + 1):
            _in_budget(number, count, started, time_budget_s)
            try:
                with _PDFIUM:
                    page = document[number - 1]
                    try:
                        chars, width, height = page_chars(page, raw, deadline)
                    finally:
                        page.close()
                unique = dedupe(chars)
                pages.append(page_lines(partial(extract_words, unique, X_TOLERANCE_RATIO), width, number))
                heights.append(height)
            except PastDeadline:
                raise _too_slow(number, count, time_budget_s) from None
            except Exception as exc:  # noqa: BLE001 - one bad page must not lose the others
                pages.append(None)
                heights.append(792.0)
                _unreadable(number, exc)
        with _PDFIUM:
            try:
                title = document.get_metadata_value("Title")
            except Exception:  # noqa: BLE001 - the title is optional; the text is what matters
                title = ""
    finally:
        with _PDFIUM:
            document.close()
    return pages, heights, title


def _read_pdfplumber(data: bytes, max_pages: int | None, started: float,
                     time_budget_s: float | None) -> tuple[list[list[Line] | None], list[float], str]:
    import pdfplumber

    try:
        pdf = pdfplumber.open(io.BytesIO(data))
        count = len(pdf.pages)
    except Exception as exc:  # noqa: BLE001 - pdfminer raises many types on malformed input
        raise _refused(exc) from exc
    with pdf:
        _check(count, max_pages)
        pages: list[list[Line] | None] = []
        heights: list[float] = []
        for number, page in enumerate(pdf.pages, start=1):
            _in_budget(number, count, started, time_budget_s)
            try:
                pages.append(page_lines(partial(_pdfplumber_words, page.dedupe_chars()), float(page.width), number))
                heights.append(float(page.height))
            except Exception as exc:  # noqa: BLE001 - one bad page must not lose the others
                pages.append(None)
                heights.append(792.0)
                _unreadable(number, exc)
            page.close()  # frees the page's parsed objects (memory stays per page, not per file)
        title = _pdfplumber_title(pdf)
    return pages, heights, title


def _pdfplumber_words(page, y_tolerance: float) -> list[dict]:
    return page.extract_words(x_tolerance_ratio=X_TOLERANCE_RATIO, y_tolerance=y_tolerance, return_chars=True)


def _pdfplumber_title(pdf) -> str:
    """The info dictionary's Title when it is text; anything else is ignored.  pdfplumber keeps
    a value it cannot decode as it is, and str() of a Title nested 100,000 arrays deep raised
    RecursionError: a 500 for the upload (issue 20)."""
    try:
        value = (pdf.metadata or {}).get("Title")
    except Exception:  # noqa: BLE001 - the title is optional; the text is what matters
        return ""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value if isinstance(value, str) else ""
