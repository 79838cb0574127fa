"""Document management: list, read, upsert (file upload or JSON text), delete."""
from __future__ import annotations

import json
from dataclasses import asdict

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from rag.api.deps import PipelineDep
from rag.api.schemas import DocumentDetail, DocumentIn, DocumentList, ErrorResponse, IndexChange
from rag.errors import InvalidRequest
from rag.ingest import METADATA_FIELDS, document_from_bytes, document_from_text, slugify
from rag.store.builder import IndexReport
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
                        "file": {"type": "string", "format": "binary", "description": ".txt, .md, .html or .pdf"},
                        "document_id": {"type": "string"},
                        **{name: {"type": "string"} for name in METADATA_FIELDS},
                    },
                }
            },
        },
    }
}


@router.get("", response_model=DocumentList, summary="List indexed documents")
def list_documents(pipeline: PipelineDep) -> dict:
    return {"documents": pipeline.documents()}


@router.get("/{document_id}", response_model=DocumentDetail, responses={404: {"model": ErrorResponse}})
def get_document(document_id: str, pipeline: PipelineDep) -> dict:
    document = pipeline.get_document(document_id)
    info = next(d for d in pipeline.documents() if d["document_id"] == document_id)
    paragraphs = sorted(
        (p for (doc, _), p in pipeline.index.paragraphs.items() if doc == document_id), key=lambda p: p.paragraph_index
    )
    return {**info, "text": document.text, "paragraphs": [asdict(p) for p in paragraphs]}


@router.post(
    "",
    response_model=IndexChange,
    status_code=201,
    openapi_extra=_UPLOAD_BODY,
    responses={415: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
    summary="Add or replace a document (multipart file upload, or JSON text)",
)
async def upsert_document(request: Request, pipeline: PipelineDep) -> dict:
    document = await _document_from_request(request, pipeline.settings.max_upload_bytes)
    report = await run_in_threadpool(pipeline.upsert_documents, [document])
    return _change(report, [document.document_id])


@router.delete("/{document_id}", response_model=IndexChange, responses={404: {"model": ErrorResponse}})
def delete_document(document_id: str, pipeline: PipelineDep) -> dict:
    return _change(pipeline.delete_document(document_id), [document_id])


def _change(report: IndexReport, ids: list[str]) -> dict:
    return {
        "document_ids": ids,
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "removed": report.removed,
        "documents": report.documents,
        "passages": report.passages,
        "version": report.version,
    }


async def _document_from_request(request: Request, max_bytes: int) -> Document:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidRequest("multipart upload needs a 'file' field")
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise InvalidRequest(f"file is larger than {max_bytes} bytes")
        metadata = {k: str(form[k]) for k in METADATA_FIELDS if form.get(k)}
        document_id = str(form.get("document_id") or "") or None
        return document_from_bytes(upload.filename or "upload.txt", data, document_id, metadata, source_path="")
    if content_type.startswith("application/json") or not content_type:
        raw = await request.body()
        if len(raw) > max_bytes:
            raise InvalidRequest(f"request body is larger than {max_bytes} bytes")
        try:
            body = DocumentIn.model_validate(json.loads(raw or b"null"))
        except json.JSONDecodeError as exc:
            raise InvalidRequest(f"malformed JSON: {exc.msg} at position {exc.pos}") from exc
        except ValidationError as exc:
            raise InvalidRequest(_validation_message(exc)) from exc
        metadata = {k: getattr(body, k) for k in METADATA_FIELDS if getattr(body, k)}
        document_id = body.document_id or (slugify(body.title) if body.title else None)
        if document_id is None:
            raise InvalidRequest("give a document_id or a title")
        return document_from_text(body.text, document_id, metadata)
    from rag.errors import UnsupportedDocument

    raise UnsupportedDocument(f"unsupported content type {content_type!r}; send multipart/form-data or application/json")


def _validation_message(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors())
