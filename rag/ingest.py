"""Stage 1: read files (or uploaded bytes) into ``Document`` objects.

A file is parsed by its format (rag/parsing/) into typed blocks over a canonical text: what a
reader sees, with markup removed and hard wraps joined.  ``Document.text`` is that canonical
text and every offset refers to it.  A sidecar ``<stem>.meta.json`` next to a file supplies
title/author/publisher/source_url.  Bad files are skipped with a reason, never fatal.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from rag.errors import DocumentTooLarge, UnsupportedDocument
from rag.parsing import SUPPORTED_SUFFIXES, ParsedDocument, decode_text, format_of, parse_plain_text
from rag.parsing.bounds import bounded_metadata
from rag.settings import Settings
from rag.types import Document

log = logging.getLogger(__name__)

__all__ = ["DocumentTooLarge", "IngestLimits", "IngestReport", "SUPPORTED_SUFFIXES", "document_from_bytes", "document_from_text",
           "load_documents", "read_document", "slugify"]

SIDECAR_SUFFIX = ".meta.json"
# A sidecar holds four short fields; anything bigger is not metadata (and json.loads of deeply
# nested input raises RecursionError).
MAX_SIDECAR_BYTES = 64 * 1024
METADATA_FIELDS = ("title", "author", "publisher", "source_url")
# Ids: lower-case words of any script joined by "-", path parts by "--" (stable, URL-safe
# once percent-encoded, and never empty: "отчёт.txt" -> "отчёт", not "document").
_SLUG = re.compile(r"[^\W_]+(?:-{1,2}[^\W_]+)*")
_NON_WORD = re.compile(r"[\W_]+")


def _declared(name: str):
    """A limit's default as declared in Settings (the class, never the environment)."""
    return Settings.model_fields[name].default


@dataclass(frozen=True)
class IngestLimits:
    """What one file may cost.  The service and `rag index` build these from their Settings
    (``from_settings``); the defaults, Settings' own, serve library callers (tests, training
    data, benchmarks), which parse in this process with no byte limit."""

    max_file_bytes: int | None = None  # None: no limit on bytes
    max_pdf_pages: int = _declared("max_pdf_pages")
    max_line_chars: int = _declared("max_line_chars")
    max_parse_seconds: float | None = _declared("max_parse_seconds")  # PDF parsing stops (413) past this; the sandbox's CPU budget
    sandbox: bool = False  # parse in a worker process with OS limits (rag/parse_pool.py)
    max_parse_memory_bytes: int = _declared("max_parse_memory_mb") * 2**20  # the sandbox's address-space budget

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestLimits:
        return cls(
            max_file_bytes=settings.max_upload_bytes,
            max_pdf_pages=settings.max_pdf_pages,
            max_line_chars=settings.max_line_chars,
            max_parse_seconds=settings.max_parse_seconds,
            sandbox=settings.parse_sandbox,
            max_parse_memory_bytes=settings.max_parse_memory_mb * 2**20,
        )


LIBRARY_LIMITS = IngestLimits()


@dataclass
class IngestReport:
    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def slugify(value: str) -> str:
    """Stable id: lower-case words (any script, NFKC) joined by '-', path separators kept as
    '--'; a name with no letters or digits gets a short hash of itself."""
    normalized = unicodedata.normalize("NFKC", value).lower()
    parts = [_NON_WORD.sub("-", part).strip("-") for part in re.split(r"[\\/]+", normalized)]
    slug = "--".join(p for p in parts if p)
    return slug or "document-" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def document_id_for(path: Path, root: Path) -> str:
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        relative = Path(path.name)
    return slugify(str(relative.with_suffix("")))


def content_hash(text: str, metadata: dict[str, str]) -> str:
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass"))
    digest.update(json.dumps(metadata, sort_keys=True).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def discover(paths: Iterable[Path], skipped: list[tuple[str, str]] | None = None) -> list[tuple[Path, Path]]:
    """(root, file) pairs for every supported file under ``paths``, sorted for stable ids.

    Symbolic links are followed only when they stay inside the folder being indexed (a link to
    /etc/hostname is not part of the corpus); missing paths are reported in ``skipped``."""
    found: list[tuple[Path, Path]] = []
    skipped = skipped if skipped is not None else []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            root = path.resolve()
            for file in sorted(path.rglob("*")):
                if not (file.is_file() and _is_candidate(file)):
                    continue
                if file.is_symlink() and not file.resolve().is_relative_to(root):
                    skipped.append((str(file), "symbolic link to a file outside the folder"))
                    continue
                found.append((path, file))
        elif path.is_file():
            found.append((path.parent, path))
        else:
            skipped.append((str(path), "no such file or folder"))
    return found


def _is_candidate(file: Path) -> bool:
    name = file.name
    return not name.startswith(".") and not name.endswith(SIDECAR_SUFFIX) and file.suffix.lower() in SUPPORTED_SUFFIXES


PROGRESS_MIN_FILES = 20


def load_documents(paths: Iterable[Path], limits: IngestLimits = LIBRARY_LIMITS) -> IngestReport:
    """Read every supported file; each file ends up exactly once in ``documents`` or
    ``skipped``.  Two files whose ids collide (``a.txt`` and ``a.md``, ``Notes.txt`` and
    ``notes.txt``) both stay: the later one's id gets its extension, then a short hash."""
    from tqdm.auto import tqdm

    report = IngestReport()
    seen: set[str] = set()
    files = discover(paths, report.skipped)
    pages = 0
    # A bar with an ETA on a terminal (`rag index` of a folder); none in logs, tests or servers
    # (tqdm's disable=None: off when stderr is no TTY), none for a handful of files.
    bar = tqdm(files, desc="parsing", unit="file", disable=None if len(files) >= PROGRESS_MIN_FILES else True)
    for root, file in bar:
        try:
            document = read_document(file, root, limits)
        except UnsupportedDocument as exc:
            log.warning("skipping %s: %s", file, exc)
            report.skipped.append((str(file), str(exc)))
            continue
        if file.suffix.lower() == ".pdf":
            pages += max((max(b.pages, default=0) for b in document.blocks), default=0)
            bar.set_postfix(pdf_pages=pages, refresh=False)
        if document.document_id in seen:
            relative = str(file.relative_to(root))
            candidate = slugify(relative)
            if candidate in seen:
                candidate = f"{document.document_id}-{hashlib.sha256(relative.encode('utf-8', 'surrogatepass')).hexdigest()[:6]}"
            document = replace(document, document_id=candidate)
        seen.add(document.document_id)
        report.documents.append(document)
    return report


def read_document(path: Path, root: Path | None = None, limits: IngestLimits = LIBRARY_LIMITS) -> Document:
    if path.suffix.lower() not in SUPPORTED_SUFFIXES:
        raise UnsupportedDocument(f"unsupported file type {path.suffix or '(none)'!r}")
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
    limits: IngestLimits = LIBRARY_LIMITS,
) -> Document:
    """Parse an uploaded or read file by its extension; raises UnsupportedDocument."""
    if limits.max_file_bytes is not None and len(data) > limits.max_file_bytes:
        raise DocumentTooLarge(f"file is larger than the limit of {limits.max_file_bytes} bytes")
    if limits.sandbox:
        from rag.parse_pool import parse_in_worker

        return parse_in_worker(filename, data, document_id, metadata, source_path, limits)
    fmt = format_of(filename)
    if fmt.binary:
        parsed = fmt.parse(data, limits.max_pdf_pages, limits.max_parse_seconds)
        check_line_lengths(parsed.text, limits.max_line_chars)
    else:
        # The file's own lines are the real ones: canonical text joins hard wraps, and 1.17 MB
        # of 60-character lines without a blank line was refused as "a line of 1,173,166
        # characters" (issue 20).  Text is checked before parsing (a 50 MB one-line file is not
        # prose); a format often minified onto one line (HTML) has its canonical text (one
        # line per block) checked after parsing instead, when its source has a long line.
        text = decode_text(data)
        if not fmt.one_line_source:
            check_line_lengths(text, limits.max_line_chars)
        parsed = fmt.parse(text)
        if fmt.one_line_source and longest_line(text, limits.max_line_chars):
            check_line_lengths(parsed.text, limits.max_line_chars)
    return document_from_parsed(parsed, document_id or slugify(Path(filename).stem), metadata, source_path)


def longest_line(text: str, max_chars: int) -> int:
    """The length of the first line of ``text`` longer than ``max_chars``; 0 when none is."""
    if len(text) <= max_chars:
        return 0
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        if end - start > max_chars:
            return end - start
        start = end + 1
    return 0


def check_line_lengths(text: str, max_chars: int) -> None:
    """Refuse text with a line over ``max_chars`` (a 50 MB one-line file is not prose, and
    chunking and reading it would take minutes and gigabytes)."""
    if length := longest_line(text, max_chars):
        raise UnsupportedDocument(
            f"a line of {length} characters is longer than the limit of {max_chars} (RAG_MAX_LINE_CHARS): not prose text"
        )


def document_from_parsed(
    parsed: ParsedDocument, document_id: str, metadata: dict[str, str] | None = None, source_path: str = ""
) -> Document:
    """A Document from a parse: sidecar metadata wins over what the file says about itself."""
    if not parsed.text.strip():
        raise UnsupportedDocument("document is empty (no text found)")
    meta = {k: str(v) for k, v in parsed.metadata.items() if k in METADATA_FIELDS and v}
    if parsed.title:
        meta["title"] = parsed.title
    meta.update({k: str(v) for k, v in (metadata or {}).items() if k in METADATA_FIELDS and v})
    # Whatever said it (the file, a sidecar, a form field), the title is copied into every
    # passage: capped here, the one place every path in goes through.
    meta = bounded_metadata(meta)
    return Document(
        document_id=document_id if _SLUG.fullmatch(document_id) else slugify(document_id),
        text=parsed.text,
        source_path=source_path,
        content_hash=content_hash(parsed.text, meta),
        format=parsed.format,
        blocks=tuple(parsed.blocks),
        **meta,
    )


def document_from_text(
    text: str, document_id: str, metadata: dict[str, str] | None = None, source_path: str = ""
) -> Document:
    """Text given directly (JSON upload, evaluation corpora), parsed as a .txt file."""
    if not text.strip():
        raise UnsupportedDocument("document is empty (no text found)")
    parsed = parse_plain_text(text)
    parsed.format = ""
    if not (metadata or {}).get("title"):
        parsed.title = ""  # no invented title for bare text: the builder falls back to a heading or the id
    return document_from_parsed(parsed, document_id, metadata, source_path)


def _read_sidecar(path: Path) -> dict[str, str]:
    sidecar = path.with_name(path.stem + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return {}
    try:
        if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
            raise ValueError(f"larger than {MAX_SIDECAR_BYTES} bytes")
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        log.warning("ignoring unreadable metadata sidecar %s: %s", sidecar, exc)
        return {}
    return {k: str(v) for k, v in data.items() if k in METADATA_FIELDS and v} if isinstance(data, dict) else {}
