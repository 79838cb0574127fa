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
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

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
def examples(pipeline: PipelineDep) -> dict:
    """Example questions for the page, from the headings and opening sentences of the largest documents."""
    try:
        index = pipeline.index
    except NotReady:
        return {"examples": []}
    # The largest documents only: the examples come from them, and no request reads the corpus.
    sizes = index.largest_documents(4 * MAX_EXAMPLES)
    paragraphs = [p for doc_id in sizes for p in index.paragraphs_of(doc_id)]
    return {"examples": example_questions(sizes, paragraphs)}


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


def _paragraph_item(p: Paragraph, marks: str | None) -> str:
    e = html.escape
    pages = ""
    if p.pages:
        label = f"p. {p.pages[0]}" if len(p.pages) == 1 else f"pp. {p.pages[0]}–{p.pages[-1]}"
        pages = f' <span class="pages">{label}</span>'
    cited = ' class="cited"' if marks is not None else ""
    return (
        f'<li id="p{p.paragraph_index}" tabindex="-1"{cited}>'
        f'<a class="anchor" href="#p{p.paragraph_index}" aria-label="paragraph {p.paragraph_index}">¶{p.paragraph_index}</a>'
        f'{pages} <span>{marks if marks is not None else e(p.text)}</span></li>'
    )


@router.get("/documents/{document_id}", response_class=HTMLResponse)
def document_page(document_id: str, pipeline: PipelineDep, p: int | None = None, quote: str | None = None,
                  answer: str | None = None) -> HTMLResponse:
    try:
        document, _, paragraphs = pipeline.document_detail(document_id)  # one snapshot
    except (DocumentNotFound, NotReady) as exc:
        body = f"<h1>Not found</h1><p>{html.escape(str(exc))}</p><p><a href=\"/\">Back to the workspace</a></p>"
        return HTMLResponse(_page("Not found", body), status_code=404, headers=SECURITY_HEADERS)
    e = html.escape
    title = document.title or document.document_id
    meta = " · ".join(e(x) for x in (document.author, document.publisher) if x)
    source = ""
    if document.source_url.startswith(("http://", "https://")):
        source = f' · <a href="{e(document.source_url)}" rel="noopener noreferrer">original source</a>'
    parts, section = [], ""
    for x in paragraphs:
        if x.section and x.section != section:
            # Close the list, name the section once, and continue the numbering after it.
            parts.append(f'</ol><h2 class="section">{e(x.section.split(" > ")[-1])}</h2>'
                         f'<ol class="paragraphs" start="{x.paragraph_index}">')
        section = x.section
        marks = None
        if p == x.paragraph_index and (quote or answer):
            marks = _marked(x.text, _span(quote, len(x.text)), _span(answer, len(x.text)))
        parts.append(_paragraph_item(x, marks))
    body = (
        f'<p><a href="/">← Back to the workspace</a></p><h1>{e(title)}</h1>'
        f'<p class="doc-meta">{meta + " · " if meta else ""}id <code>{e(document.document_id)}</code>{source}</p>'
        f'<ol class="paragraphs" start="0">{"".join(parts)}</ol>'
    )
    return HTMLResponse(_page(title, body), headers=SECURITY_HEADERS)


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html.escape(title)}</title><link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/static/style.css"></head>'
        f'<body class="document-view"><main class="document">{body}</main></body></html>'
    )
