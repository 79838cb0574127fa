"""Stage 1: read files (or uploaded bytes) into ``Document`` objects.

``Document.text`` is the text every offset refers to: the decoded file for .txt/.md, the
extracted text for .html and .pdf.  A sidecar ``<stem>.meta.json`` next to a file supplies
title/author/publisher/source_url.  Bad files are skipped with a warning, never fatal.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag.errors import UnsupportedDocument
from rag.types import Document

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES
SIDECAR_SUFFIX = ".meta.json"
METADATA_FIELDS = ("title", "author", "publisher", "source_url")
_SLUG = re.compile(r"[a-z0-9]+(?:-{1,2}[a-z0-9]+)*")

# Block-level HTML elements whose text becomes one paragraph each.
_HTML_BLOCKS = ["p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td", "th", "dd", "dt", "figcaption"]
_HTML_NOISE = ["script", "style", "noscript", "template", "nav", "head"]


# Bad-input guards (see docs/security.md).  Limits that are settings come through IngestLimits.
# HTML nested deeper than this, counting elements left open (except those whose end tag HTML
# lets you omit, like <p> and <li>), is not a document but an attack on the parser.
MAX_HTML_DEPTH = 1000
# html.parser builds a Python object per element (~10 us each): this bounds one file to seconds.
MAX_HTML_ELEMENTS = 200_000
_HTML_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr", "keygen", "basefont", "frame", "isindex"}
_HTML_OPTIONAL_END = {"p", "li", "dt", "dd", "tr", "td", "th", "thead", "tbody", "tfoot", "option", "optgroup", "colgroup", "caption", "rb", "rt", "rp", "rtc", "html", "head", "body"}
_HTML_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*?(/?)>")
_HTML_RAW_TEXT_ELEMENTS = {"script", "style", "textarea", "title", "xmp", "plaintext"}


class DocumentTooLarge(UnsupportedDocument):
    """A file over a size limit (bytes, PDF pages): HTTP 413, or skipped by ``rag index``."""


@dataclass(frozen=True)
class IngestLimits:
    max_file_bytes: int | None = None  # None: no limit on bytes
    max_pdf_pages: int = 1000
    max_line_chars: int = 1_000_000

    @classmethod
    def from_settings(cls, settings) -> IngestLimits:
        return cls(
            max_file_bytes=getattr(settings, "max_upload_bytes", None),
            max_pdf_pages=getattr(settings, "max_pdf_pages", cls.max_pdf_pages),
            max_line_chars=getattr(settings, "max_line_chars", cls.max_line_chars),
        )


def default_limits() -> IngestLimits:
    """The environment's limits (RAG_MAX_PDF_PAGES, RAG_MAX_LINE_CHARS); files read from disk
    have no byte limit of their own: the line and page limits bound the work."""
    from rag.settings import get_settings

    return replace(IngestLimits.from_settings(get_settings()), max_file_bytes=None)


@dataclass
class IngestReport:
    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def slugify(value: str) -> str:
    """Stable, URL-safe id: lower-case ASCII words joined by '-', path separators kept as '--'."""
    parts = [re.sub(r"[^a-z0-9]+", "-", part.lower()).strip("-") for part in re.split(r"[\\/]+", value)]
    slug = "--".join(p for p in parts if p)
    return slug or "document"


def document_id_for(path: Path, root: Path) -> str:
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        relative = Path(path.name)
    return slugify(str(relative.with_suffix("")))


def content_hash(text: str, metadata: dict[str, str]) -> str:
    digest = hashlib.sha256(text.encode("utf-8"))
    digest.update(json.dumps(metadata, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()


def discover(paths: Iterable[Path]) -> list[tuple[Path, Path]]:
    """(root, file) pairs for every supported file under ``paths``, sorted for stable ids."""
    found: list[tuple[Path, Path]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if file.is_file() and _is_candidate(file):
                    found.append((path, file))
        elif path.is_file():
            found.append((path.parent, path))
        else:
            log.warning("skipping %s: no such file or folder", path)
    return found


def _is_candidate(file: Path) -> bool:
    name = file.name
    return not name.startswith(".") and not name.endswith(SIDECAR_SUFFIX) and file.suffix.lower() in SUPPORTED_SUFFIXES


def load_documents(paths: Iterable[Path], limits: IngestLimits | None = None) -> IngestReport:
    report = IngestReport()
    seen: dict[str, Path] = {}
    limits = limits or default_limits()
    for root, file in discover(paths):
        try:
            document = read_document(file, root, limits)
        except UnsupportedDocument as exc:
            log.warning("skipping %s: %s", file, exc)
            report.skipped.append((str(file), str(exc)))
            continue
        if document.document_id in seen:
            # a.txt and a.md in one folder: keep both, tell them apart by extension.
            document = replace(document, document_id=slugify(str(file.relative_to(root))))
        seen[document.document_id] = file
        report.documents.append(document)
    return report


def read_document(path: Path, root: Path | None = None, limits: IngestLimits | None = None) -> Document:
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise UnsupportedDocument(f"unsupported file type {path.suffix or '(none)'!r}")
    limits = limits or default_limits()
    try:
        if limits.max_file_bytes is not None and path.stat().st_size > limits.max_file_bytes:
            raise DocumentTooLarge(f"file is larger than the limit of {limits.max_file_bytes} bytes")
        data = path.read_bytes()
    except OSError as exc:
        raise UnsupportedDocument(f"cannot read file: {exc.strerror or exc}") from exc
    metadata = _read_sidecar(path)
    document_id = document_id_for(path, root or path.parent)
    return document_from_bytes(path.name, data, document_id, metadata, source_path=str(path), limits=limits)


def document_from_bytes(
    filename: str,
    data: bytes,
    document_id: str | None = None,
    metadata: dict[str, str] | None = None,
    source_path: str = "",
    limits: IngestLimits | None = None,
) -> Document:
    """Decode an uploaded or read file by its extension; raises UnsupportedDocument."""
    suffix = Path(filename).suffix.lower()
    limits = limits or default_limits()
    if limits.max_file_bytes is not None and len(data) > limits.max_file_bytes:
        raise DocumentTooLarge(f"file is larger than the limit of {limits.max_file_bytes} bytes")
    if suffix in TEXT_SUFFIXES:
        text = _decode(data)
    elif suffix in HTML_SUFFIXES:
        text = html_to_text(_decode(data))
    elif suffix in PDF_SUFFIXES:
        text = pdf_to_text(data, max_pages=limits.max_pdf_pages)
    else:
        raise UnsupportedDocument(
            f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"
        )
    check_line_lengths(text, limits.max_line_chars)
    return document_from_text(text, document_id or slugify(Path(filename).stem), metadata, source_path)


def check_line_lengths(text: str, max_chars: int) -> None:
    """Refuse text with a line over ``max_chars`` (a 50 MB one-line file is not prose, and
    chunking and reading it would take minutes and gigabytes)."""
    if len(text) <= max_chars:
        return
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        if end - start > max_chars:
            raise UnsupportedDocument(
                f"a line of {end - start} characters is longer than the limit of {max_chars} (RAG_MAX_LINE_CHARS): not prose text"
            )
        start = end + 1


def document_from_text(
    text: str, document_id: str, metadata: dict[str, str] | None = None, source_path: str = ""
) -> Document:
    if not text.strip():
        raise UnsupportedDocument("document is empty (no text found)")
    meta = {k: str(v) for k, v in (metadata or {}).items() if k in METADATA_FIELDS and v}
    return Document(
        document_id=document_id if _SLUG.fullmatch(document_id) else slugify(document_id),
        text=text,
        source_path=source_path,
        content_hash=content_hash(text, meta),
        **meta,
    )


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise UnsupportedDocument("binary data in a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnsupportedDocument(f"not valid UTF-8 text (byte {exc.start})") from exc


def _read_sidecar(path: Path) -> dict[str, str]:
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable metadata sidecar %s: %s", sidecar, exc)
        return {}
    return {k: str(v) for k, v in data.items() if k in METADATA_FIELDS and v} if isinstance(data, dict) else {}


def html_to_text(html: str) -> str:
    """One paragraph per block element, separated by blank lines.

    The text of a block is its own text, without the text of the blocks inside it (taken one by
    one): for well-formed HTML that is one paragraph per innermost block; for sloppy HTML with
    unclosed <p> tags (which the parser nests) every paragraph is still kept.  Linear time, no
    recursion; HTML nested deeper than MAX_HTML_DEPTH or with more than MAX_HTML_ELEMENTS
    elements is refused (UnsupportedDocument) before it reaches the parser.
    """
    from bs4 import BeautifulSoup

    _check_html_shape(html)
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(_HTML_NOISE):
        tag.decompose()
    blocks = _block_texts(soup)
    if not blocks:
        blocks = [" ".join(line.split()) for line in soup.get_text("\n").splitlines() if line.strip()]
    return "\n\n".join(blocks)


def _check_html_shape(html: str) -> None:
    """Refuse HTML too deep or too big for the parser, in one linear scan of its tags."""
    lowered = html.lower()
    depth = elements = 0
    position = 0
    while True:
        match = _HTML_TAG.search(html, position)
        if match is None:
            break
        position = match.end()
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if closing:
            if name not in _HTML_VOID and name not in _HTML_OPTIONAL_END:
                depth = max(0, depth - 1)
            continue
        elements += 1
        if elements > MAX_HTML_ELEMENTS:
            raise UnsupportedDocument(f"HTML has more than {MAX_HTML_ELEMENTS} elements")
        if name in _HTML_RAW_TEXT_ELEMENTS:  # their content is text, not tags
            end = lowered.find(f"</{name}", position)
            if end < 0:
                break
            position = end
            continue
        if not self_closing and name not in _HTML_VOID and name not in _HTML_OPTIONAL_END:
            depth += 1
            if depth > MAX_HTML_DEPTH:
                raise UnsupportedDocument(f"HTML is nested more than {MAX_HTML_DEPTH} levels deep")


def _block_texts(soup) -> list[str]:
    """The own text of each block element, in document order (iterative walk)."""
    from bs4 import CData, NavigableString, Tag

    blocks_names = set(_HTML_BLOCKS)
    blocks: list[str] = []
    current: list[str] = []
    inside = 0  # open block elements around the walk

    def flush() -> None:
        text = " ".join(" ".join(current).split())
        if text:
            blocks.append(text)
        current.clear()

    stack = [(None, iter(soup.contents))]
    while stack:
        element, children = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            if element is not None and element.name in blocks_names:
                flush()
                inside -= 1
            continue
        if isinstance(child, Tag):
            if child.name in blocks_names:
                flush()
                inside += 1
            stack.append((child, iter(child.contents)))
        elif inside and type(child) in (NavigableString, CData):
            current.append(str(child))
    return blocks


def pdf_to_text(data: bytes, max_pages: int | None = None) -> str:
    """Text of every page; lines re-flowed into paragraphs (PDFs break lines inside them).

    A PDF encrypted with an empty user password (only printing/copying restricted) is read;
    one that needs a password is skipped, as is a broken one.  One unreadable page is left
    out; a PDF with more than ``max_pages`` pages is refused (DocumentTooLarge).
    """
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                unlocked = reader.decrypt("")
            except Exception as exc:  # noqa: BLE001 - unsupported algorithm, missing crypto library
                raise UnsupportedDocument(f"PDF is encrypted and cannot be opened: {exc}") from exc
            if not unlocked:
                raise UnsupportedDocument("PDF is encrypted (it needs a password)")
        count = len(reader.pages)
    except UnsupportedDocument:
        raise
    except RecursionError as exc:
        raise UnsupportedDocument("broken PDF: its structure is nested too deeply") from exc
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on malformed input
        raise UnsupportedDocument(f"broken PDF: {exc or type(exc).__name__}") from exc
    if max_pages is not None and count > max_pages:
        raise DocumentTooLarge(f"PDF has {count} pages, more than the limit of {max_pages} (RAG_MAX_PDF_PAGES)")
    pages: list[str] = []
    failures = 0
    for number in range(count):
        try:
            pages.append(reader.pages[number].extract_text() or "")
        except Exception as exc:  # noqa: BLE001 - one bad page must not lose the others
            failures += 1
            log.warning("PDF page %d unreadable, left out: %s", number + 1, exc or type(exc).__name__)
    if count and failures == count:
        raise UnsupportedDocument("broken PDF: no page could be read")
    return "\n\n".join(_reflow(page) for page in pages if page.strip())


def _reflow(page: str) -> str:
    """Join a line to the next unless it ends a sentence or the next line is blank."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in page.splitlines():
        line = line.strip()
        if not line:
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(line)
        if re.search(r"[.!?:\"”]$", line):
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return "\n".join(paragraphs)
