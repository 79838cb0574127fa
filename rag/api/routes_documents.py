"""Document management: list, read, upsert (file upload or JSON text), delete.

Parsing an upload (PDF, HTML, ...) and indexing it are CPU work: both run in worker threads,
never on the event loop, so /healthz and other requests are answered meanwhile (issue 11: a
22.6 s PDF parse blocked every request for its whole duration).  The request body is still read
on the loop (that is I/O); only the bytes-to-document step moves.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from rag.api import document_pages
from rag.api.deps import PipelineDep
from rag.api.schemas import DocumentDetail, DocumentIn, DocumentList, ErrorResponse, IndexChange
from rag.errors import DocumentConflict, InvalidRequest, MalformedBody, PayloadTooLarge, UnsupportedDocument
from rag.ingest import (
    METADATA_FIELDS,
    DocumentTooLarge,
    IngestLimits,
    check_line_lengths,
    document_from_bytes,
    document_from_text,
    slugify,
)
from rag.parsing.bounds import METADATA_MAX_CHARS
from rag.types import Document

router = APIRouter(prefix="/v1/documents", tags=["documents"])

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": DocumentIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": ".txt, .md, .html, .pdf, .docx or .pptx; repeat the field to send several files (up to max_documents_per_request)",
                        },
                        "document_id": {"type": "string"},
                        "replace": {"type": "string", "enum": ["true", "false"], "description": "replace a document from another file with the same id (else 409)"},
                        **{name: {"type": "string"} for name in METADATA_FIELDS},
                    },
                }
            },
        },
    },
    # OpenAPI links: clients (and schemathesis' stateful tests) can follow an upload to the
    # document it created, read it, and delete it.
    "responses": {
        "201": {
            "links": {
                "GetDocument": {"operationId": "get_document", "parameters": {"document_id": "$response.body#/document_ids/0"}},
                "DeleteDocument": {"operationId": "delete_document", "parameters": {"document_id": "$response.body#/document_ids/0"}},
            }
        }
    },
}


# A page of the list: at 10^6 documents the whole list is ~300 MB of JSON and a scan of every
# document row, so it comes in pages ordered by id (keyset: a page costs its own rows).
DEFAULT_PAGE = 100
MAX_PAGE = 1000


def public_source(source_path: str) -> str:
    """The file's name: ``rag index`` records where it read a file (``/srv/corpus/a/b.md``),
    and clients must not learn the server's folders (issue 20, item 13); uploads record only
    their name already."""
    return PurePath(source_path).name if source_path else ""


@router.get("", response_model=DocumentList, summary="List indexed documents, one page at a time (by id)")
def list_documents(pipeline: PipelineDep, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
                   after: Annotated[str | None, Query(max_length=512, description="the previous page's next_after")] = None) -> dict:
    page = pipeline.documents(limit=limit + 1, after=after)
    more = len(page) > limit
    documents = [{**info, "source_path": public_source(info.get("source_path", ""))} for info in page[:limit]]
    return {"documents": documents, "next_after": page[limit - 1]["document_id"] if more else None}


@router.get("/{document_id}", response_model=DocumentDetail, responses={404: {"model": ErrorResponse}, 429: {"model": ErrorResponse}},
            operation_id="get_document", summary="One document: its text, blocks and paragraphs, a page of paragraphs at a time")
def get_document(document_id: str, request: Request, pipeline: PipelineDep,
                 start: Annotated[int, Query(ge=0, description="first paragraph of the page (the previous page's next_start)")] = 0,
                 limit: Annotated[int, Query(ge=1, le=document_pages.MAX_PARAGRAPHS, description="paragraphs per page")] =
                 document_pages.DEFAULT_PARAGRAPHS) -> Response:
    # A plain def: FastAPI runs it in a worker thread, and the JSON is rendered here too, not on
    # the event loop (a 20 MB document was 77 MB of JSON, 6.8 CPU-s: rag/api/document_pages.py).
    page = document_pages.read_page(request, pipeline, document_id, start, limit)
    document = page.loaded.document
    body = {
        **document.metadata(),
        "source_path": public_source(document.source_path),
        **page.loaded.info,
        "characters": len(document.text),
        "paragraph_count": page.count,
        "start": page.start,
        "next_start": page.next_start,
        "next": f"/v1/documents/{quote(document_id, safe='')}?start={page.next_start}&limit={limit}" if page.next_start is not None else None,
        "text_start": page.text_start,
        "text_end": page.text_end,
        "text": page.text,
        "blocks": [block.to_dict() for block in document_pages.blocks_of(page)],
        "paragraphs": [asdict(p) for p in page.paragraphs],
    }
    return Response(json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode(), media_type="application/json")


@router.post(
    "",
    response_model=IndexChange,
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses={400: {"model": ErrorResponse}, 409: {"model": ErrorResponse}, 413: {"model": ErrorResponse}, 415: {"model": ErrorResponse},
               422: {"model": ErrorResponse}},
    summary="Add or replace a document (multipart file upload, or JSON text)",
)
async def upsert_document(request: Request, pipeline: PipelineDep) -> IndexChange:
    upload = await _documents_from_request(request, pipeline.settings)
    documents = upload.documents
    # An id taken from a file name or title must not silently replace a document from another
    # file or with another title (409); an explicit document_id or replace=true replaces on
    # purpose.  The writer checks under its lock (Pipeline.upsert_documents).
    guarded = [] if upload.replace else [d.document_id for d in documents if d.document_id not in upload.explicit_ids]
    report = await run_in_threadpool(pipeline.upsert_documents, documents, refuse_overwrite=guarded)
    return IndexChange.of(report, [d.document_id for d in documents])


@router.delete("/{document_id}", response_model=IndexChange, responses={404: {"model": ErrorResponse}}, operation_id="delete_document")
def delete_document(document_id: str, pipeline: PipelineDep) -> IndexChange:
    return IndexChange.of(pipeline.delete_document(document_id), [document_id])


@dataclass
class _Upload:
    documents: list[Document]
    explicit_ids: set[str] = field(default_factory=set)  # ids the client named (an upsert key)
    replace: bool = False  # the client asked to replace whatever has these ids


async def _documents_from_request(request: Request, settings) -> _Upload:
    """The documents of an upload (one per multipart 'file' field, or one JSON document) and
    whether the client asked to replace existing documents (``replace=true``).

    Limits (413): each file up to max_upload_bytes, at most max_documents_per_request files.
    Uploaded file names only choose the parser (by extension) and the default id (a slug): they
    never name a path on disk.
    """
    max_bytes = settings.max_upload_bytes
    max_files = settings.max_documents_per_request
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=max_files, max_fields=100)
        except HTTPException as exc:
            if exc.status_code == 400 and "too many files" in str(exc.detail).lower():
                raise PayloadTooLarge(f"more than {max_files} files in one request (RAG_MAX_DOCUMENTS_PER_REQUEST)") from exc
            raise
        uploads = [u for u in form.getlist("file") if not isinstance(u, str)]
        if not uploads:
            raise InvalidRequest("multipart upload needs a 'file' field")
        if len(uploads) > max_files:
            raise PayloadTooLarge(f"more than {max_files} files in one request (RAG_MAX_DOCUMENTS_PER_REQUEST)")
        metadata = {k: str(form[k]) for k in METADATA_FIELDS if form.get(k)}
        for key, value in metadata.items():
            # the JSON upload's limits (DocumentIn): a 1 MB multipart title made every BM25
            # search touching its passages 0.02 s -> 1.25 s (issue 20)
            if len(value) > METADATA_MAX_CHARS[key]:
                raise InvalidRequest(f"{key} is longer than {METADATA_MAX_CHARS[key]} characters")
        document_id = str(form.get("document_id") or "") or None
        replace = str(form.get("replace", "")).lower() in ("1", "true", "yes")
        if document_id is not None and len(uploads) > 1:
            raise InvalidRequest("document_id can only be given with a single file")
        if document_id is not None and len(document_id) > 200:
            raise InvalidRequest("document_id is longer than 200 characters")
        limits = IngestLimits.from_settings(settings)
        documents: dict[str, Document] = {}
        for upload in uploads:
            data = await upload.read(max_bytes + 1)
            name = upload.filename or "upload.txt"
            if len(data) > max_bytes:
                raise DocumentTooLarge(f"file {name!r} is larger than the limit of {max_bytes} bytes (RAG_MAX_UPLOAD_BYTES)")
            try:
                # source_path records the uploaded file's name (never a path on disk).
                document = await run_in_threadpool(document_from_bytes, name, data, document_id, metadata,
                                                   source_path=Path(name).name, limits=limits)
            except UnsupportedDocument as exc:
                raise type(exc)(f"{name}: {exc}" if len(uploads) > 1 else str(exc)) from exc
            if document.document_id in documents:
                raise DocumentConflict(f"two files of this upload have the id {document.document_id!r}: rename one or upload them separately")
            documents[document.document_id] = document
        return _Upload(list(documents.values()), set(documents) if document_id else set(), replace)
    if content_type.startswith("application/json"):
        raw = await request.body()
        if len(raw) > max_bytes:
            raise DocumentTooLarge(f"request body is larger than the limit of {max_bytes} bytes (RAG_MAX_UPLOAD_BYTES)")
        return await run_in_threadpool(_document_from_json, raw, settings)
    # A missing Content-Type was read as JSON: a browser Blob without a type overwrote a
    # document that way across sites (issue 11).  The access check answers 415 before this.
    raise UnsupportedDocument(f"unsupported content type {content_type!r}; send multipart/form-data or application/json")


def _document_from_json(raw: bytes, settings) -> _Upload:
    """The one document of a JSON upload (run in a worker thread: parsing and line checks are CPU work)."""
    try:
        body = DocumentIn.model_validate(json.loads(raw or b"null"))
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"malformed JSON: {exc.msg} at position {exc.pos}") from exc
    except UnicodeDecodeError as exc:  # json.loads guesses UTF-8/16/32 from the first bytes
        raise InvalidRequest(f"the JSON body is not valid {exc.encoding.upper()}") from exc
    except ValidationError as exc:
        raise InvalidRequest(_validation_message(exc)) from exc
    except RecursionError as exc:  # "[" x 100,000: json.loads recurses once per level (a 500, issue 20)
        raise MalformedBody("the JSON body is nested too deeply") from exc
    metadata = {k: getattr(body, k) for k in METADATA_FIELDS if getattr(body, k)}
    document_id = body.document_id or (slugify(body.title) if body.title else None)
    if document_id is None:
        raise InvalidRequest("give a document_id or a title")
    check_line_lengths(body.text, settings.max_line_chars)
    document = document_from_text(body.text, document_id, metadata)
    return _Upload([document], {document.document_id} if body.document_id else set(), body.replace)


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
