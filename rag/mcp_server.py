"""The MCP server: the pipeline's questions and documents as Model Context Protocol tools.

A thin shell over :class:`rag.pipeline.Pipeline`, like the API and the CLI (the pipeline never
imports it).  It needs the optional extra ``[mcp]`` (the official ``mcp`` SDK) and has two
transports:

* stdio, ``rag mcp``: what desktop clients (Claude Desktop, Cursor, VS Code) launch; the models
  load in a background thread once the process starts, so the client's handshake is answered at
  once and the first call waits for them;
* streamable HTTP at ``/mcp`` of ``rag serve`` (:func:`mount_http`): stateless JSON responses,
  behind the API's key check (rag/api/security.py runs before every route) and work budget;
  the app's start-up has already loaded the models.

Tools (each returns structured content with an output schema, and a readable text part):

* ``ask``: answers quoted verbatim, each with its citation (document, title, section, pages,
  paragraph, character offsets, score), or the abstention: the plain-language message and its
  cause (rag/abstention.py); the same data as ``POST /v1/ask`` without the retrieved passages;
* ``search``: the retrieved passages (``POST /v1/search``);
* ``get_document``: a document's canonical text, a range of paragraphs at a time;
* ``list_documents``: the indexed documents, a page at a time (by id).

Resources: ``rag://documents/{document_id}`` is a document's canonical text, so a client can open
the cited source; every citation's ``doc_start``/``doc_end`` index into it.

Pipeline calls are CPU work: they run in worker threads (``anyio.to_thread``), never on the
event loop.  A failure the caller can fix (an empty question, an unknown document, no index yet)
is a tool error with one clear sentence (``is_error``), never a crash of the server.
"""

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

import anyio
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer, ResourceSecurity
from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError, ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, Resource, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from rag import __version__
from rag.api.document_pages import DocumentCache, Loaded
from rag.api.errors import public_detail
from rag.api.routes_documents import public_source
from rag.api.schemas import AnswerModel, CitationModel, DocumentInfo, Mode, NoAnswerModel, PassageModel, ask_response
from rag.errors import DocumentNotFound, RagError
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.types import passage_to_dict

log = logging.getLogger(__name__)

SERVER_NAME = "rag"
DOCUMENT_URI = "rag://documents/{document_id}"
# get_document: paragraphs per call by default and at most, and the characters of text one call
# returns at most (~15k tokens: a model's context is the limit here, not the server).
DEFAULT_PARAGRAPHS = 50
MAX_PARAGRAPHS = 1000
MAX_TEXT_CHARS = 60_000
DEFAULT_DOCUMENTS = 100
MAX_DOCUMENTS = 1000
# resources/list names at most this many documents (a client shows them in a picker); every
# document stays readable through the template.
LISTED_RESOURCES = 1000
# A JSON-RPC message over HTTP: a question is at most max_question_chars (1000 by default).
MAX_REQUEST_BYTES = 1 << 20

INSTRUCTIONS = (
    "Extractive question answering over the user's indexed documents. Answers are exact quotes, each cited "
    "to its document, paragraph and characters; when the documents do not answer, `ask` says so (no_answer) "
    "instead of guessing: report that rather than answering from memory. Use `search` to see passages, "
    "`get_document` or the resource rag://documents/{id} to read a cited source."
)


def document_uri(document_id: str) -> str:
    return DOCUMENT_URI.format(document_id=quote(document_id, safe=""))


# ----------------------------------------------------------------------------- output schemas
# The API's models (rag/api/schemas.py) with the resource URI of each cited document added.

class CitationOut(CitationModel):
    uri: str = Field(description="The cited document as an MCP resource; its text[doc_start:doc_end] is paragraph_text.")


class AnswerOut(AnswerModel):
    citation: CitationOut
    supporting: list[CitationOut] = Field(default_factory=list, description="Other paragraphs quoting the same answer text.")  # type: ignore[assignment]  # narrowed


class AskOut(BaseModel):
    question: str
    answered: bool = Field(description="False when the service abstains: no_answer says why.")
    answers: list[AnswerOut] = Field(description="Best first; text is a verbatim quote of citation.paragraph_text[answer_start:answer_end].")
    no_answer: NoAnswerModel | None = Field(None, description="The abstention: message (for people), reason, and cause "
                                            "(no_passage, no_candidate or below_threshold).")


class PassageOut(PassageModel):
    uri: str = Field(description="The passage's document as an MCP resource.")


class SearchOut(BaseModel):
    query: str
    passages: list[PassageOut]


class DocumentOut(DocumentInfo):
    uri: str = Field(description="The document as an MCP resource (its whole canonical text).")


class DocumentListOut(BaseModel):
    documents: list[DocumentOut]
    next_after: str | None = Field(None, description="More documents follow: pass this as `after` for the next page.")


class ParagraphOut(BaseModel):
    paragraph_index: int
    doc_start: int = Field(description="The paragraph is the document's text[doc_start:doc_end].")
    doc_end: int
    section: str = Field("", description="Heading path, outermost first, joined by ' > '.")
    kind: str = "paragraph"
    pages: list[int] = Field(default_factory=list, description="1-based PDF pages (PPTX slides).")


class DocumentPageOut(DocumentOut):
    paragraph_count: int = Field(description="Paragraphs in the whole document.")
    start: int = Field(description="Index of the first paragraph returned.")
    next_start: int | None = Field(None, description="More paragraphs follow: pass this as `start` for the next range.")
    text_start: int = Field(description="Offset of `text` in the document's canonical text.")
    text_end: int
    text: str = Field(description="The canonical text from text_start to text_end (the paragraphs' text and what lies between).")
    paragraphs: list[ParagraphOut]


# ----------------------------------------------------------------------------- readable text

def _where(citation: dict) -> str:
    parts = [f"{citation['title'] or citation['document_id']} ({citation['document_id']})"]
    if citation.get("section"):
        parts.append(citation["section"])
    if citation.get("pages"):
        parts.append(("p. " if len(citation["pages"]) == 1 else "pp. ") + ", ".join(str(p) for p in citation["pages"]))
    parts.append(f"paragraph {citation['paragraph_index']}")
    return ", ".join(parts)


def ask_text(out: AskOut) -> str:
    if not out.answers:
        no = out.no_answer
        message = (no.message if no else "") or "The documents don't say."
        reason = no.reason if no else ""
        return f"{message} ({reason})" if reason else message
    lines = []
    for n, answer in enumerate(out.answers, start=1):
        c = answer.citation.model_dump()
        lines.append(f"{n}. {answer.text}  [score {answer.score:.3f}]")
        lines.append(f"   \u201c{' '.join(answer.context.split())}\u201d")
        lines.append(f"   \u2014 {_where(c)}, characters {c['answer_start']}-{c['answer_end']} of the paragraph; {c['uri']}")
    return "\n".join(lines)


def search_text(out: SearchOut) -> str:
    if not out.passages:
        return "No passage matches."
    return "\n\n".join(f"{n}. [{p.score:.3f}] {_where(p.model_dump())}; {p.uri}\n{p.text}" for n, p in enumerate(out.passages, start=1))


def list_text(out: DocumentListOut) -> str:
    if not out.documents:
        return "No documents are indexed."
    lines = [f"- {d.document_id}: {d.title or '(untitled)'} ({d.format or 'text'}, {d.passages} passages) {d.uri}" for d in out.documents]
    if out.next_after:
        lines.append(f"More documents follow: call list_documents with after={out.next_after!r}.")
    return "\n".join(lines)


def document_text(out: DocumentPageOut) -> str:
    end = out.next_start if out.next_start is not None else out.paragraph_count
    head = f"{out.title or out.document_id} ({out.document_id}), paragraphs {out.start}-{max(out.start, end - 1)} of {out.paragraph_count}"
    blocks = [head]
    for p in out.paragraphs:
        label = f"[paragraph {p.paragraph_index}" + (f"; {p.section}" if p.section else "") + (
            f"; p. {', '.join(str(n) for n in p.pages)}" if p.pages else "") + "]"
        blocks.append(f"{label}\n{out.text[p.doc_start - out.text_start : p.doc_end - out.text_start]}")
    if not out.paragraphs and out.text.strip():
        blocks.append(out.text)
    if out.next_start is not None:
        blocks.append(f"More follows: call get_document with start={out.next_start}.")
    return "\n\n".join(blocks)


# ----------------------------------------------------------------------------- the server

Charge = Callable[[Context, int], None]
_T = TypeVar("_T")


class _Warm:
    """Loads the models once, in a background thread started with the server; the first tool
    call waits for it (stdio: the client's handshake is answered meanwhile)."""

    def __init__(self, pipeline: Pipeline):
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._done = False

    def __call__(self) -> None:
        if self._done:
            return
        with self._lock:
            if not self._done:
                try:
                    self.pipeline.warm_up()
                except RagError as exc:  # a model that cannot load: every call says so
                    log.error("loading the models failed: %s", exc)
                    raise
                self._done = True

    def start(self) -> None:
        def quietly() -> None:
            try:
                self()
            except Exception:  # noqa: BLE001 - logged; the next call retries and reports it
                log.exception("warming up failed")

        threading.Thread(target=quietly, name="rag-mcp-warm-up", daemon=True).start()


def _structured(out: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=out.model_dump(mode="json"))


class RagMCP(MCPServer):
    """MCPServer whose resources/list names the indexed documents (the template reads any)."""

    def __init__(self, pipeline: Pipeline, **kwargs: Any):
        super().__init__(**kwargs)
        self.pipeline = pipeline

    async def list_resources(self) -> list[Resource]:
        listed = await super().list_resources()
        try:
            infos = await anyio.to_thread.run_sync(lambda: self.pipeline.documents(limit=LISTED_RESOURCES))
        except RagError as exc:  # no index, a damaged one: nothing to list
            log.info("resources/list: %s", exc)
            return listed
        return listed + [
            Resource(uri=document_uri(info["document_id"]), name=info["document_id"], title=info.get("title") or None,
                     description=f"{info.get('format') or 'text'} document, {info.get('passages', 0)} passages", mime_type="text/plain")
            for info in infos
        ]


def build_server(pipeline: Pipeline, *, warm_up: bool = True, public_errors: bool = False, charge: Charge | None = None) -> RagMCP:
    """The MCP server over ``pipeline``.

    ``warm_up``: load the models in the background when the server starts (stdio; the HTTP app
    loads them itself).  ``public_errors``: tell clients only what the API tells them about the
    server's own state (no folders: rag/api/errors.py), for network clients.  ``charge``: take
    work units from the caller's budget before a call works (HTTP), or raise ToolError.
    """
    warm = _Warm(pipeline)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        if warm_up:
            warm.start()
        yield

    server = RagMCP(pipeline, name=SERVER_NAME, title="rag: cited answers from your documents", version=__version__,
                    instructions=INSTRUCTIONS, lifespan=lifespan, log_level="WARNING")
    settings = pipeline.settings
    documents = DocumentCache()

    def detail(exc: RagError) -> str:
        return public_detail(exc) if public_errors else str(exc)

    async def run(ctx: Context | None, units: int, work: Callable[[], _T]) -> _T:
        if charge is not None and ctx is not None:
            charge(ctx, units)

        def call() -> _T:
            if warm_up:
                warm()
            return work()

        try:
            return await anyio.to_thread.run_sync(call)
        except RagError as exc:
            raise ToolError(detail(exc)) from exc

    read_only = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

    @server.tool(title="Ask the documents", annotations=read_only)
    async def ask(
        question: Annotated[str, Field(min_length=1, max_length=settings.max_question_chars, description="A question in plain language.")],
        top_k: Annotated[int | None, Field(ge=1, le=100, description="Passages to retrieve (default: the service's).")] = None,
        mode: Annotated[Mode | None, Field(description="Retrieval: bm25, dense or hybrid (default).")] = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, AskOut]:
        """Answer a question from the indexed documents with exact quotes and citations.

        Each answer is a verbatim span of a document, with the sentence around it and its citation
        (document, title, section, PDF pages, paragraph index, character offsets, score). When the
        documents do not answer, `answers` is empty and `no_answer` gives the plain-language message
        and its cause: say that the documents don't answer, do not guess."""
        units = 1 + settings.reader_top_k
        result = await run(ctx, units, lambda: ask_response(pipeline.ask(question, top_k=top_k, mode=mode)))
        answers = []
        for answer in result["answers"]:
            answer["citation"]["uri"] = document_uri(answer["citation"]["document_id"])
            for citation in answer.get("supporting", ()):
                citation["uri"] = document_uri(citation["document_id"])
            answers.append(answer)
        out = AskOut(question=result["question"], answered=bool(answers), answers=answers, no_answer=result["no_answer"])
        return _structured(out, ask_text(out))

    @server.tool(title="Search passages", annotations=read_only)
    async def search(
        query: Annotated[str, Field(min_length=1, max_length=settings.max_question_chars, description="Words or a question to look for.")],
        top_k: Annotated[int | None, Field(ge=1, le=100, description="Passages to return (default: the service's).")] = None,
        mode: Annotated[Mode | None, Field(description="Retrieval: bm25, dense or hybrid (default).")] = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, SearchOut]:
        """Retrieve the passages that best match a query (no answer extraction), best first, with
        their documents, sections, pages, offsets and scores."""
        found = await run(ctx, 1, lambda: pipeline.search(query, top_k=top_k, mode=mode))
        passages = [{**passage_to_dict(p), "uri": document_uri(p.passage.document_id)} for p in found.passages]
        out = SearchOut(query=query, passages=passages)
        return _structured(out, search_text(out))

    @server.tool(title="Read a document", annotations=read_only)
    async def get_document(
        document_id: Annotated[str, Field(min_length=1, max_length=512, description="The document's id (from a citation or list_documents).")],
        start: Annotated[int, Field(ge=0, description="First paragraph to return (a citation's paragraph_index, or the previous call's next_start).")] = 0,
        limit: Annotated[int, Field(ge=1, le=MAX_PARAGRAPHS, description="Paragraphs to return at most.")] = DEFAULT_PARAGRAPHS,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, DocumentPageOut]:
        """Read a document's canonical text (what a reader sees), a range of paragraphs at a time,
        with each paragraph's offsets, section and pages. Returns at most ~60,000 characters per
        call; `next_start` continues."""

        def load() -> tuple[Loaded, int, int]:
            loaded, _ = documents.load(pipeline, document_id)
            first, end = _paragraph_range(loaded, start, limit)
            return loaded, first, end

        loaded, first, end = await run(ctx, 1, load)
        out = _document_page(loaded, first, end)
        return _structured(out, document_text(out))

    @server.tool(title="List documents", annotations=read_only)
    async def list_documents(
        limit: Annotated[int, Field(ge=1, le=MAX_DOCUMENTS, description="Documents per page.")] = DEFAULT_DOCUMENTS,
        after: Annotated[str | None, Field(max_length=512, description="The previous page's next_after.")] = None,
        ctx: Context | None = None,
    ) -> Annotated[CallToolResult, DocumentListOut]:
        """List the indexed documents (id, title, format, passages, characters), ordered by id, one page at a time."""
        page = await run(ctx, 1, lambda: pipeline.documents(limit=limit + 1, after=after))
        more = len(page) > limit
        listed = [{**info, "source_path": public_source(info.get("source_path", "")), "uri": document_uri(info["document_id"])} for info in page[:limit]]
        out = DocumentListOut(documents=listed, next_after=page[limit - 1]["document_id"] if more else None)
        return _structured(out, list_text(out))

    # Ids are keys of the index, never paths: the SDK's path checks do not apply to them.
    @server.resource(DOCUMENT_URI, name="document", title="Document text", mime_type="text/plain",
                     description="A document's canonical text; citations' doc_start/doc_end index into it.",
                     security=ResourceSecurity(exempt_params={"document_id"}))
    async def document_resource(document_id: str) -> str:
        def load() -> str:
            if warm_up:
                warm()
            return documents.load(pipeline, document_id)[0].document.text

        try:
            return await anyio.to_thread.run_sync(load)
        except DocumentNotFound as exc:
            raise ResourceNotFoundError(str(exc)) from exc
        except RagError as exc:
            raise ResourceError(detail(exc)) from exc

    return server


def _paragraph_range(loaded: Loaded, start: int, limit: int) -> tuple[int, int]:
    """Paragraphs [start, end): at most ``limit``, fewer when their text passes MAX_TEXT_CHARS (at least one)."""
    paragraphs = loaded.paragraphs
    start = max(0, min(start, len(paragraphs)))
    first = paragraphs[start].doc_start if 0 < start < len(paragraphs) else 0
    end = start
    while end < len(paragraphs) and end - start < limit:
        if end > start and paragraphs[end].doc_end - first > MAX_TEXT_CHARS:
            break
        end += 1
    return start, end


def _document_page(loaded: Loaded, start: int, end: int) -> DocumentPageOut:
    """Paragraphs [start, end) and the text they tile (the API's page rule: rag/api/document_pages.cut)."""
    document, paragraphs, text = loaded.document, loaded.paragraphs, loaded.document.text
    if not paragraphs:
        text_start, text_end = 0, len(text)
    elif start >= len(paragraphs):
        text_start = text_end = len(text)
    else:
        text_start = paragraphs[start].doc_start if start > 0 else 0
        text_end = paragraphs[end].doc_start if end < len(paragraphs) else len(text)
    return DocumentPageOut(
        **{**document.metadata(), "source_path": public_source(document.source_path)},
        **loaded.info,
        uri=document_uri(document.document_id),
        characters=len(text),
        paragraph_count=len(paragraphs),
        start=start,
        next_start=end if end < len(paragraphs) else None,
        text_start=text_start,
        text_end=text_end,
        text=text[text_start:text_end],
        paragraphs=[ParagraphOut(paragraph_index=p.paragraph_index, doc_start=p.doc_start, doc_end=p.doc_end, section=p.section,
                                 kind=p.kind, pages=list(p.pages)) for p in paragraphs[start:end]],
    )


# ----------------------------------------------------------------------------- transports

def run_stdio(settings: Settings) -> None:
    """``rag mcp``: serve over stdin/stdout until the client closes them (stdout carries only
    JSON-RPC: the SDK points fd 1 at stderr while it serves, and logs go to stderr)."""
    pipeline = Pipeline(settings)
    build_server(pipeline, warm_up=True).run("stdio")


def mount_http(app: Any, pipeline: Pipeline, settings: Settings, path: str = "/mcp") -> Callable[[], AbstractAsyncContextManager[None]]:
    """Add the streamable HTTP endpoint at ``path`` to ``app`` (the FastAPI app of rag/api/app.py)
    and return what its lifespan must run while the app serves.

    Stateless, with JSON responses: any replica answers any request (no session to pin).  The
    app's middleware runs first: API keys (401/403), rate limits, request logs.  Browsers are
    held to the app's rule: a request with an ``Origin`` other than this service's (or one of
    RAG_CORS_ORIGINS) is refused (DNS rebinding, cross-site pages); the SDK's own Host check is
    off because the service's address behind a proxy is not known here."""
    from starlette.exceptions import HTTPException

    def charge(ctx: Context, units: int) -> None:
        budget = getattr(app.state, "work_budget", None)
        request = getattr(ctx.request_context, "request", None)
        scope = getattr(request, "scope", None)
        if budget is None or scope is None:
            return
        try:
            budget.charge(scope, units)
        except HTTPException as exc:
            raise ToolError(str(exc.detail)) from exc

    server = build_server(pipeline, warm_up=False, public_errors=True, charge=charge)
    endpoint = _Endpoint(settings)
    app.add_route(path, endpoint, include_in_schema=False)
    endpoint.route = app.router.routes[-1]

    @asynccontextmanager
    async def running() -> AsyncIterator[None]:
        # A session manager runs once: each start of the app (tests start one app several
        # times) builds a new one.  Building the SDK's Starlette app sets it up; that app is
        # not mounted (a mount answers /mcp with a redirect to /mcp/): its endpoint is routed
        # here directly, after the app's middleware.
        server.streamable_http_app(streamable_http_path=path, json_response=True, stateless_http=True,
                                   max_request_body_size=MAX_REQUEST_BYTES,
                                   transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
        manager = server.session_manager
        async with manager.run():
            endpoint.app = StreamableHTTPASGIApp(manager)
            try:
                yield
            finally:
                endpoint.app = None

    return running


class _Endpoint:
    """The ASGI endpoint at /mcp: the running session manager's, behind the app's Origin rule
    (a browser request from another site's page is refused, 403)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.app: Any = None
        self.route: Any = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        # FastAPI's routes name themselves in the scope, a plain route does not: the request
        # logs and metrics (rag/api/observability.py) label this one "/mcp", not "unmatched".
        scope.setdefault("route", self.route)
        from rag.api.asgi import send_json
        from rag.api.write_guard import header, is_own_origin

        origin = header(scope, b"origin")
        if origin is not None and not (origin in self.settings.cors_origins or is_own_origin(origin, scope, self.settings)):
            await send_json(send, 403, {"detail": f"MCP requests from the web page of another site are refused (Origin {origin!r})"})
            return
        if self.app is None:  # the app's lifespan has not started it (or has stopped it)
            await send_json(send, 503, {"detail": "the MCP endpoint is not running"})
            return
        await self.app(scope, receive, send)
