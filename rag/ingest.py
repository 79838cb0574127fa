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


def load_documents(paths: Iterable[Path]) -> IngestReport:
    report = IngestReport()
    seen: dict[str, Path] = {}
    for root, file in discover(paths):
        try:
            document = read_document(file, root)
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


def read_document(path: Path, root: Path | None = None) -> Document:
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise UnsupportedDocument(f"unsupported file type {path.suffix or '(none)'!r}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnsupportedDocument(f"cannot read file: {exc.strerror or exc}") from exc
    metadata = _read_sidecar(path)
    document_id = document_id_for(path, root or path.parent)
    return document_from_bytes(path.name, data, document_id, metadata, source_path=str(path))


def document_from_bytes(
    filename: str,
    data: bytes,
    document_id: str | None = None,
    metadata: dict[str, str] | None = None,
    source_path: str = "",
) -> Document:
    """Decode an uploaded or read file by its extension; raises UnsupportedDocument."""
    suffix = Path(filename).suffix.lower()
    if suffix in TEXT_SUFFIXES:
        text = _decode(data)
    elif suffix in HTML_SUFFIXES:
        text = html_to_text(_decode(data))
    elif suffix in PDF_SUFFIXES:
        text = pdf_to_text(data)
    else:
        raise UnsupportedDocument(
            f"unsupported file type {suffix or '(none)'!r}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"
        )
    return document_from_text(text, document_id or slugify(Path(filename).stem), metadata, source_path)


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
    """One paragraph per innermost block element, separated by blank lines."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(_HTML_NOISE):
        tag.decompose()
    blocks = []
    for element in soup.find_all(_HTML_BLOCKS):
        if element.find(_HTML_BLOCKS):
            continue  # an outer block: its inner blocks are taken one by one
        text = " ".join(element.get_text(" ").split())
        if text:
            blocks.append(text)
    if not blocks:
        blocks = [" ".join(line.split()) for line in soup.get_text("\n").splitlines() if line.strip()]
    return "\n\n".join(blocks)


def pdf_to_text(data: bytes) -> str:
    """Text of every page; lines re-flowed into paragraphs (PDFs break lines inside them)."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnsupportedDocument("PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
    except UnsupportedDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnsupportedDocument(f"broken PDF: {exc}") from exc
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
