"""OpenAI-compatible chat: GET /v1/models and POST /v1/chat/completions (plain and streaming).

Any OpenAI client (the ``openai`` package, Open WebUI, LibreChat) can talk to the service: the
collections are listed as models, the latest user message is answered extractively (after
follow-up rewriting, see ``rag.chat``), and the citations travel as ``message.annotations``
(``url_citation``) plus a ``citations`` extension field with the ``/v1/ask`` citation objects.
Errors use OpenAI's shape ``{"error": {"message", "type", "param", "code"}}`` and are 4xx for bad
input: 400 for malformed messages (including text that is not Unicode: unpaired surrogates),
413 ``context_length_exceeded`` for a history over ``RAG_MAX_CHAT_MESSAGES`` messages or
``RAG_MAX_CHAT_CHARS`` characters or more than 4 content parts per allowed message (checked
before the messages are validated or rewritten; parsing runs in a worker thread, and a body is
charged to the work budget by its size), 429 when the client's work budget is spent (rag/api/budget.py).

For chat front ends (rag/chat_clients.py): a front end's background task prompt (Open WebUI's
title, tags and follow-up requests) gets a 200 with the JSON its template asks for, a ``task``
field and an ``X-RAG-Task`` header, without retrieval; answers carry ``sources`` in Open WebUI's
source format, and a stream also sends them as Open WebUI ``event`` objects, which other clients
ignore.
"""
from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sse_starlette import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from rag.api.budget import charge, question_cost
from rag.api.deps import PipelineDep
from rag.api.errors import public_detail, status_for
from rag.api.schemas import Text
from rag.chat import ChatAnswer, ChatTurn, build_chat_answer, count_tokens, rewrite_question
from rag.chat_clients import TaskReply, open_webui_sources, task_prompt
from rag.followups import best_reading
from rag.errors import InvalidRequest, RagError
from rag.pipeline import Pipeline
from rag.types import Citation
from rag.settings import RetrievalMode

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["chat (OpenAI-compatible)"])

DEFAULT_MODEL = "rag-default"
# Names a user types before reading GET /v1/models (issue 21: "model": "rag" was a 404): they
# mean the configured index, and the response names the listed id.
MODEL_ALIASES = {"rag": DEFAULT_MODEL}
_STARTED = int(time.time())


# ----------------------------------------------------------------------------- request models
class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: Text | None = None


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ... are accepted and ignored
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Text | list[ContentPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text or "" for p in self.content if p.type in ("text", "input_text") and p.text)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's request body; sampling parameters (temperature, max_tokens, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(..., min_length=1, examples=[DEFAULT_MODEL])
    messages: list[ChatMessageIn] = Field(..., min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=1, description="Only one choice is produced.")
    top_k: int | None = Field(None, ge=1, le=100, description="Extension: passages retrieved (as in /v1/ask).")
    mode: RetrievalMode | None = Field(None, description="Extension: retrieval mode.")


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """The model's JSON schema with its local ``$defs`` inlined, so it is valid inside the OpenAPI document."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


_OPENAI_ERROR = {"content": {"application/json": {"schema": {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type"], "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}},
}}}}
# OpenAI-style error bodies ({"error": {...}}), the statuses the route answers besides 200.
_ERRORS = {
    400: {"description": "Invalid request body or messages", **_OPENAI_ERROR},
    404: {"description": "Unknown model", **_OPENAI_ERROR},
    413: {"description": "Chat history over RAG_MAX_CHAT_MESSAGES or RAG_MAX_CHAT_CHARS (code context_length_exceeded)", **_OPENAI_ERROR},
    429: {"description": "Rate limit or work budget exceeded (see Retry-After)", **_OPENAI_ERROR},
    503: {"description": "Index or models not ready", **_OPENAI_ERROR},
}
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": _inline_refs(ChatCompletionRequest.model_json_schema())}}}}


# ----------------------------------------------------------------------------- errors
class OpenAIError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(status_code=self.status, content=body, headers=self.headers)


def _from_rag_error(exc: RagError) -> OpenAIError:

    if isinstance(exc, InvalidRequest):
        return OpenAIError(400, str(exc), param="messages")
    status = status_for(exc)
    if status >= 500:
        log.warning("chat: %s", exc)  # the whole message, paths included, for the operator
    return OpenAIError(status, public_detail(exc), "service_unavailable" if status == 503 else "invalid_request_error")


# ----------------------------------------------------------------------------- models
def model_ids(pipeline: Pipeline) -> list[str]:
    """The collections served as models: for now the one configured index."""
    return [DEFAULT_MODEL]


def resolve_model(requested: str, pipeline: Pipeline) -> str | None:
    """The listed id ``requested`` names (itself, an alias, either in any case), else None."""
    name = requested.strip().lower()
    name = MODEL_ALIASES.get(name, name)
    return next((m for m in model_ids(pipeline) if m.lower() == name), None)


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _STARTED, "owned_by": "rag"}


@router.get("/models", summary="List the collections as models")
def list_models(pipeline: PipelineDep) -> dict:
    return {"object": "list", "data": [_model(m) for m in model_ids(pipeline)]}


@router.get("/models/{model_id}", summary="One model")
def get_model(model_id: str, pipeline: PipelineDep):
    listed = resolve_model(model_id, pipeline)
    if listed is None:
        return _unknown_model(model_id, pipeline).response()
    return _model(listed)


def _unknown_model(model_id: str, pipeline: Pipeline) -> OpenAIError:
    known = ", ".join(model_ids(pipeline))
    aliases = ", ".join(sorted(MODEL_ALIASES))
    return OpenAIError(404, f"The model {model_id!r} does not exist; available: {known} (also accepted: {aliases})",
                       param="model", code="model_not_found")


# ----------------------------------------------------------------------------- completions
def _too_long(message: str) -> OpenAIError:
    return OpenAIError(413, message, param="messages", code="context_length_exceeded")


# Content parts ({"type": "text", "text": ...}) over all messages: OpenAI clients send one or two
# per message, so 4 per allowed message is room enough.  180,000 parts (2.34 MB, under the byte
# bound below) cost 0.73 CPU-s of parsing on the event loop, /healthz worst 808 ms (issue 20).
PARTS_PER_MESSAGE = 4
# Parsing and validating a history costs ~0.3 CPU-s per MB (the 2.34 MB above), ~6 units of the
# work budget (0.05 CPU-s each): a body is charged 1 unit per BODY_BYTES_PER_UNIT beyond the question.
BODY_BYTES_PER_UNIT = 128 * 1024
TYPE_KEYS_ELSEWHERE = 1024


async def _parse(request: Request, settings) -> ChatCompletionRequest:
    raw = await request.body()
    # A character takes at most 12 bytes in JSON (an escaped surrogate pair), plus ~100 bytes of
    # structure per message: a longer body cannot be a history within the limits, and is not
    # parsed at all (23.9 MB of history took 9.5 s to parse and rewrite, issue 11).
    most = 12 * settings.max_chat_chars + 100 * settings.max_chat_messages + 64 * 1024
    if len(raw) > most:
        raise _too_long(f"the request body ({len(raw)} bytes) is longer than a chat history within RAG_MAX_CHAT_CHARS={settings.max_chat_chars} can be")
    max_parts = PARTS_PER_MESSAGE * settings.max_chat_messages
    # '"type"' cannot occur inside a JSON string (its quotes would be escaped): counting it bounds
    # the parts before parsing (with room for other "type" keys: tool schemas, response_format);
    # the exact count, and parts spelled with escapes, are checked after parsing.
    if raw.count(b'"type"') > max_parts + TYPE_KEYS_ELSEWHERE:
        raise _too_long(f"more than {max_parts} content parts ({PARTS_PER_MESSAGE} per message of RAG_MAX_CHAT_MESSAGES)")
    _charge(request, len(raw) // BODY_BYTES_PER_UNIT)  # the question itself is charged once the model is known
    # Parsing and validation are CPU work: in a worker thread, never on the event loop.
    return await run_in_threadpool(_validated, raw, settings, max_parts)


def _charge(request: Request, units: int) -> None:
    if units <= 0:
        return
    try:
        charge(request, units)
    except HTTPException as exc:
        raise OpenAIError(exc.status_code, str(exc.detail), "rate_limit_exceeded", code="rate_limit_exceeded", headers=exc.headers) from exc


def _validated(raw: bytes, settings, max_parts: int) -> ChatCompletionRequest:
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OpenAIError(400, f"malformed JSON body: {exc}") from exc
    except RecursionError as exc:  # "[" x 100,000: json.loads recurses once per level (a 500, issue 20)
        raise OpenAIError(400, "malformed JSON body: nested too deeply") from exc
    messages = data.get("messages") if isinstance(data, dict) else None
    if isinstance(messages, list) and len(messages) > settings.max_chat_messages:
        raise _too_long(f"{len(messages)} messages, more than {settings.max_chat_messages} (RAG_MAX_CHAT_MESSAGES): start a new conversation")
    if isinstance(messages, list):
        parts = sum(len(m["content"]) for m in messages if isinstance(m, dict) and isinstance(m.get("content"), list))
        if parts > max_parts:
            raise _too_long(f"{parts} content parts, more than {max_parts} ({PARTS_PER_MESSAGE} per message of RAG_MAX_CHAT_MESSAGES)")
    try:
        return ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        # The deepest error is the specific one: for content "str | list of parts" pydantic also
        # reports that a list is not a string.
        first = max(exc.errors(), key=lambda e: len(e.get("loc", ())))
        # Drop pydantic's union/validator labels ("function-after[well_formed(), str]") from the path.
        where = ".".join(str(p) for p in first.get("loc", ()) if isinstance(p, int) or str(p).isidentifier()) or "body"
        raise OpenAIError(400, f"{where}: {first.get('msg')}", param=where) from exc


def _history(body: ChatCompletionRequest, max_chars: int) -> list[ChatTurn]:
    turns = [ChatTurn(m.role, m.text()) for m in body.messages if m.role in ("user", "assistant")]
    characters = sum(len(t.content) for t in turns)
    if characters > max_chars:
        raise _too_long(f"the conversation has {characters} characters, more than {max_chars} (RAG_MAX_CHAT_CHARS): start a new conversation")
    users = [t for t in turns if t.role == "user"]
    if not users:
        raise OpenAIError(400, "messages: no user message; the latest user message is the question", param="messages")
    if not users[-1].content.strip():
        raise OpenAIError(400, "messages: the latest user message has no text", param="messages")
    return turns


def public_base_url(request: Request, pipeline: Pipeline) -> str:
    """Where browsers reach this service: ``RAG_PUBLIC_URL`` when set, else the address of the
    socket the request came in on (``scope["server"]``).

    Never the ``Host`` header: it is the client's to write, and a link built from it points
    wherever the client said (issue 11).  Set RAG_PUBLIC_URL when clients call the service under
    an address users cannot open (Open WebUI in Docker calling ``http://host.docker.internal:8000``),
    or behind a proxy, so citation links still work.
    """
    configured = pipeline.settings.public_url
    if configured:
        return str(configured).rstrip("/")
    scheme = request.scope.get("scheme", "http")
    server = request.scope.get("server")
    if not server:  # a Unix socket: no address a browser could open; links stay relative
        return ""
    host, port = str(server[0]), server[1]
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + ("" if port in (None, default) else f":{port}")


def _paragraph_url(request: Request, pipeline: Pipeline):
    base = public_base_url(request, pipeline)

    def url(citation: Citation) -> str:
        # ?p= picks the page of a long document that holds the paragraph (the view is paginated);
        # the fragment scrolls to it.
        return f"{base}/documents/{quote(citation.document_id, safe='')}?p={citation.paragraph_index}#p{citation.paragraph_index}"

    return url


def _prepare(body: ChatCompletionRequest, max_chars: int) -> tuple[list[ChatTurn], TaskReply | None]:
    """The validated turns, and the reply when the latest user message is a front end's task prompt."""
    turns = _history(body, max_chars)
    return turns, task_prompt(next(t.content for t in reversed(turns) if t.role == "user"))


def _answer(pipeline: Pipeline, body: ChatCompletionRequest, request: Request, turns: list[ChatTurn]) -> ChatAnswer:
    readings = rewrite_question(turns).readings()
    results = pipeline.ask_batch([r.question for r in readings], top_k=body.top_k, mode=body.mode)
    rewrite, result = best_reading(readings, results)
    sources = pipeline.source_urls({a.citation.document_id for a in result.answers})
    return build_chat_answer(result, rewrite, _paragraph_url(request, pipeline), sources)


def _usage(turns: list[ChatTurn], content: str) -> dict[str, int]:
    prompt = sum(count_tokens(t.content) for t in turns)
    completion = count_tokens(content)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _extensions(answer: ChatAnswer) -> dict[str, Any]:
    return {
        "rewritten_question": answer.rewrite.question,
        "rewrite": {"original": answer.rewrite.original, "rule": answer.rewrite.rule, "subject": answer.rewrite.subject},
        "citations": answer.citations,
        "answers": answer.answers,
        "sources": open_webui_sources(answer),
        "no_answer": answer.no_answer,
    }


class _Reply:
    """What a completion carries, streamed or not: content, annotations and extension fields."""

    def __init__(self, content: str, annotations: list[dict], extensions: dict[str, Any], first: dict[str, Any]):
        self.content, self.annotations, self.extensions = content, annotations, extensions
        self.first = first  # extension fields of the first streamed chunk

    @classmethod
    def of_answer(cls, answer: ChatAnswer) -> _Reply:
        return cls(answer.content, [a.to_dict() for a in answer.annotations], _extensions(answer),
                   {"rewritten_question": answer.rewrite.question})

    @classmethod
    def of_task(cls, task: TaskReply) -> _Reply:
        info = {"task": task.info(), "citations": [], "answers": [], "sources": []}
        return cls(task.content, [], info, {"task": task.info()})


@router.post("/chat/completions", openapi_extra=_BODY, responses=_ERRORS, summary="OpenAI-compatible chat: cited extractive answers")
async def chat_completions(request: Request, pipeline: PipelineDep):
    try:
        body = await _parse(request, pipeline.settings)
        listed = resolve_model(body.model, pipeline)
        if listed is None:
            raise _unknown_model(body.model, pipeline)
        body.model = listed
        turns, task = await run_in_threadpool(_prepare, body, pipeline.settings.max_chat_chars)
        if task is not None:
            reply = _Reply.of_task(task)
        else:
            _charge(request, question_cost(pipeline.settings))
            reply = _Reply.of_answer(await run_in_threadpool(_answer, pipeline, body, request, turns))
    except OpenAIError as exc:
        return exc.response()
    except RagError as exc:
        return _from_rag_error(exc).response()
    headers = {"X-RAG-Task": task.task} if task is not None else None
    completion_id = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    usage = _usage(turns, reply.content)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = _chunks(completion_id, created, body.model, reply, usage if include_usage else None)
        return EventSourceResponse(chunks, ping=15, headers=headers)
    message = {"role": "assistant", "content": reply.content, "refusal": None, "annotations": reply.annotations}
    return JSONResponse({
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": body.model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
        "usage": usage,
        **reply.extensions,
    }, headers=headers)


def _pieces(content: str, words: int = 4) -> list[str]:
    """The content cut into a few words per chunk (concatenating them gives it back exactly)."""
    tokens = [m.group(0) for m in re.finditer(r"\s*\S+", content)]
    tail = content[len("".join(tokens)) :]
    pieces = ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)] or [""]
    pieces[-1] += tail
    return pieces


async def _chunks(completion_id: str, created: int, model: str, reply: _Reply, usage: dict | None) -> AsyncIterator[dict]:
    """role, content pieces, one Open WebUI source event per marker, the citations chunk, the
    finish chunk (with an event that sets Open WebUI's sources to those), [usage], and [DONE].

    Open WebUI turns each streamed url_citation into a source of its own (named by the URL, the
    title as its text) and appends it; the source events come first so that marker [n] opens
    source n (the cited paragraph), and the last event replaces the list where Open WebUI allows.
    """

    def chunk(delta: dict, finish: str | None = None, **extra: Any) -> dict:
        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model, "system_fingerprint": None}
        body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
        return {"data": json.dumps({**body, **extra}, ensure_ascii=False)}

    yield chunk({"role": "assistant", "content": ""}, **reply.first)
    for piece in _pieces(reply.content):
        yield chunk({"content": piece})
    sources = reply.extensions.get("sources") or []
    for source in sources:
        yield chunk({}, event={"type": "source", "data": source})
    yield chunk({"annotations": reply.annotations}, **reply.extensions)
    yield chunk({}, "stop", **({"event": {"type": "chat:completion", "data": {"sources": sources}}} if sources else {}))
    if usage is not None:
        final = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [], "usage": usage}
        yield {"data": json.dumps(final)}
    yield {"data": "[DONE]"}
