"""The built-in web workspace: the page at /, its static files, example questions, and a document view.

Everything is served by the app itself (no CDN, no web fonts), under a Content-Security-Policy
that allows only same-origin scripts and styles.  The document view at /documents/{id} is the
target of citation links: each paragraph has the anchor #p{paragraph_index}, a section heading
is shown once where its section starts, and ``?quote=S-E&answer=S-E`` (character offsets inside
the linked paragraph) marks the quoted sentence and the answer in it.  Document text is
HTML-escaped on the server and inserted as text (textContent) by the page's scripts.
"""
from __future__ import annotations

import html
import re
import threading
from pathlib import Path
from urllib.parse import quote as url_quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse

from rag.api import document_pages
from rag.api.deps import PipelineDep
from rag.api.web_examples import MAX_EXAMPLES, example_questions
from rag.errors import DocumentNotFound, NotReady
from rag.types import Paragraph

router = APIRouter(include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
JS = "text/javascript; charset=utf-8"
STATIC_FILES = {"app.js": JS, "render.js": JS, "library.js": JS, "store.js": JS, "style.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_SPAN = re.compile(r"^(\d{1,9})-(\d{1,9})$")
_examples_lock = threading.Lock()


# HEAD too: link checkers and uptime probes send HEAD / (GET-only routes answer it with 405).
@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/static/{name}")
def static(name: str):
    if name not in STATIC_FILES:  # a fixed list: no path ever reaches the file system unchecked
        return HTMLResponse("not found", status_code=404, headers=SECURITY_HEADERS)
    return FileResponse(WEB_DIR / name, media_type=STATIC_FILES[name], headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@router.get("/web/examples")
def examples(request: Request, pipeline: PipelineDep) -> dict:
    """Example questions for the page, from the headings and opening sentences of the largest
    documents; computed once per index version (every load of / fetches them: with four 20 MB
    documents each load cost 11 CPU-s, issue 20)."""
    try:
        version = pipeline.version()
    except NotReady:
        return {"examples": []}
    state = request.app.state
    cached = getattr(state, "web_examples", None)
    if cached is not None and cached[0] == version:
        return {"examples": cached[1]}
    with _examples_lock:  # one computation per version, however many pages load at once
        cached = getattr(state, "web_examples", None)
        if cached is not None and cached[0] == version:
            return {"examples": cached[1]}
        # The largest documents only: the examples come from them, and no request reads the corpus.
        version, sizes, paragraphs = pipeline.largest_documents(4 * MAX_EXAMPLES)
        found = example_questions(sizes, paragraphs)
        state.web_examples = (version, found)
    return {"examples": found}


def _span(value: str | None, length: int) -> tuple[int, int] | None:
    match = _SPAN.match(value or "")
    if not match:
        return None
    start, end = int(match.group(1)), int(match.group(2))
    return (start, end) if 0 <= start < end <= length else None


def _marked(text: str, quote: tuple[int, int] | None, answer: tuple[int, int] | None) -> str:
    """The paragraph as HTML: the quote in <mark>, the answer in <strong> (inside it when nested)."""
    e = html.escape
    if quote is None and answer is None:
        return e(text)
    qs, qe = quote or answer  # type: ignore[misc]
    a_s, a_e = answer if answer and qs <= answer[0] and answer[1] <= qe else (qs, qs)
    inner = e(text[qs:a_s]) + (f"<strong>{e(text[a_s:a_e])}</strong>" if a_e > a_s else "") + e(text[a_e:qe])
    return f'{e(text[:qs])}<mark id="quote">{inner}</mark>{e(text[qe:])}'


def _lead_heading(p: Paragraph, heading: str) -> int:
    """Characters of the paragraph that repeat the heading just shown above it: a heading leads
    the paragraph under it (rag/chunking.py), and the view names it once, as the section's <h2>."""
    if not heading or not p.text.startswith(heading) or p.text[len(heading) : len(heading) + 1] != "\n":
        return 0
    return len(p.text) - len(p.text[len(heading) :].lstrip())


def _paragraph_item(p: Paragraph, marks: str | None, skip: int = 0) -> str:
    e = html.escape
    pages = ""
    if p.pages:
        label = f"p. {p.pages[0]}" if len(p.pages) == 1 else f"pp. {p.pages[0]}–{p.pages[-1]}"
        pages = f' <span class="pages">{label}</span>'
    cited = ' class="cited"' if marks is not None else ""
    return (
        f'<li id="p{p.paragraph_index}" tabindex="-1"{cited}>'
        f'<a class="anchor" href="#p{p.paragraph_index}" aria-label="paragraph {p.paragraph_index}">¶{p.paragraph_index}</a>'
        f'{pages} <span class="text">{marks if marks is not None else e(p.text[skip:])}</span></li>'
    )


@router.get("/documents/{document_id}", response_class=HTMLResponse)
def document_page(document_id: str, request: Request, pipeline: PipelineDep, p: int | None = Query(None, ge=0),
                  quote: str | None = None, answer: str | None = None, start: int | None = Query(None, ge=0),
                  limit: int = Query(document_pages.DEFAULT_PARAGRAPHS, ge=1, le=document_pages.MAX_PARAGRAPHS)) -> HTMLResponse:
    """A page of the document's paragraphs (rendered in this worker thread, never on the event
    loop): the one holding paragraph ``p`` when no ``start`` is given, with links to the pages
    before and after (a 20 MB document was 23 MB of HTML, 2.4 CPU-s per view)."""
    if start is None:
        start = (p // limit) * limit if p is not None else 0
    try:
        page = document_pages.read_page(request, pipeline, document_id, start, limit)
    except (DocumentNotFound, NotReady) as exc:
        body = f"<h1>Not found</h1><p>{html.escape(str(exc))}</p><p><a href=\"/\">Back to the workspace</a></p>"
        return HTMLResponse(_page("Not found", body), status_code=404, headers=SECURITY_HEADERS)
    document = page.loaded.document
    e = html.escape
    title = document.title or document.document_id
    meta = " · ".join(e(x) for x in (document.author, document.publisher) if x)
    source = ""
    if document.source_url.startswith(("http://", "https://")):
        source = f' · <a href="{e(document.source_url)}" rel="noopener noreferrer">original source</a>'
    # The section in force at the page's first paragraph is named even when it began earlier.
    section = page.loaded.paragraphs[page.start - 1].section if 0 < page.start <= page.count else ""
    parts = []
    if section and page.paragraphs and page.paragraphs[0].section == section:
        parts.append(f'</ol><h2 class="section">{e(section.split(" > ")[-1])}</h2><ol class="paragraphs" start="{page.start}">')
    for x in page.paragraphs:
        skip = 0
        if x.section and x.section != section:
            # Close the list, name the section once, and continue the numbering after it.
            heading = x.section.split(" > ")[-1]
            parts.append(f'</ol><h2 class="section">{e(heading)}</h2>'
                         f'<ol class="paragraphs" start="{x.paragraph_index}">')
            skip = _lead_heading(x, heading)
        section = x.section
        marks = None
        if p == x.paragraph_index and (quote or answer):
            spans = [_span(quote, len(x.text)), _span(answer, len(x.text))]
            if any(s is not None and s[0] < skip for s in spans):
                skip = 0  # the quote reaches into the heading: show the paragraph whole
            marks = _marked(x.text[skip:], *[(s[0] - skip, s[1] - skip) if s else None for s in spans])
        parts.append(_paragraph_item(x, marks, skip))
    nav = _page_links(document_id, page, limit)
    body = (
        f'<p><a href="/">← Back to the workspace</a></p><h1>{e(title)}</h1>'
        f'<p class="doc-meta">{meta + " · " if meta else ""}id <code>{e(document.document_id)}</code>{source}</p>'
        f'{nav}<ol class="paragraphs" start="{page.start}">{"".join(parts)}</ol>{nav}'
    )
    return HTMLResponse(_page(title, body).encode(), headers=SECURITY_HEADERS)


def _page_links(document_id: str, page: document_pages.Page, limit: int) -> str:
    """Links to the previous and next pages; nothing for a document of one page."""
    if page.start == 0 and page.next_start is None:
        return ""
    path = f"/documents/{url_quote(document_id, safe='')}"
    links = []
    if page.start > 0:
        links.append(f'<a rel="prev" href="{path}?start={max(0, page.start - limit)}&amp;limit={limit}">← earlier paragraphs</a>')
    links.append(f"paragraphs {page.start}–{max(page.start, page.end - 1)} of {page.count}")
    if page.next_start is not None:
        links.append(f'<a rel="next" href="{path}?start={page.next_start}&amp;limit={limit}">later paragraphs →</a>')
    return f'<nav class="doc-pages">{" · ".join(links)}</nav>'


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)}</title><link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/static/style.css"></head>'
        f'<body class="document-view"><main class="document">{body}</main></body></html>'
    )
