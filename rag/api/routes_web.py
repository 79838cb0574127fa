"""The built-in web chat: the page at /, its static files, and a readable document view.

Everything is served by the app itself (no CDN, no web fonts), under a Content-Security-Policy
that allows only same-origin scripts and styles.  The document view at /documents/{id} is the
target of citation links: each paragraph has the anchor #p{paragraph_index}.  Document text is
HTML-escaped on the server and inserted as text (textContent) by the page's script.
"""
from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from rag.api.deps import PipelineDep
from rag.errors import DocumentNotFound, NotReady

router = APIRouter(include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
STATIC_FILES = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


# HEAD too: link checkers and uptime probes send HEAD / (GET-only routes answer it with 405).
@router.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/static/{name}")
def static(name: str):
    if name not in STATIC_FILES:  # a fixed list: no path ever reaches the file system unchecked
        return HTMLResponse("not found", status_code=404, headers=SECURITY_HEADERS)
    return FileResponse(WEB_DIR / name, media_type=STATIC_FILES[name], headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@router.get("/documents/{document_id}", response_class=HTMLResponse)
def document_page(document_id: str, pipeline: PipelineDep) -> HTMLResponse:
    try:
        document = pipeline.get_document(document_id)
        paragraphs = sorted(
            (p for (doc, _), p in pipeline.index.paragraphs.items() if doc == document_id), key=lambda p: p.paragraph_index
        )
    except (DocumentNotFound, NotReady) as exc:
        body = f"<h1>Not found</h1><p>{html.escape(str(exc))}</p><p><a href=\"/\">Back to the chat</a></p>"
        return HTMLResponse(_page("Not found", body), status_code=404, headers=SECURITY_HEADERS)
    e = html.escape
    title = document.title or document.document_id
    meta = " · ".join(e(x) for x in (document.author, document.publisher) if x)
    source = ""
    if document.source_url.startswith(("http://", "https://")):
        source = f' · <a href="{e(document.source_url)}" rel="noopener noreferrer">original source</a>'
    items = []
    for p in paragraphs:
        section = f'<span class="section">{e(p.section)}</span> ' if p.section else ""
        items.append(
            f'<li id="p{p.paragraph_index}" tabindex="-1"><a class="anchor" href="#p{p.paragraph_index}" '
            f'aria-label="paragraph {p.paragraph_index}">¶{p.paragraph_index}</a> {section}<span>{e(p.text)}</span></li>'
        )
    body = (
        f'<p><a href="/">← Back to the chat</a></p><h1>{e(title)}</h1>'
        f'<p class="doc-meta">{meta + " · " if meta else ""}id <code>{e(document.document_id)}</code>{source}</p>'
        f'<ol class="paragraphs" start="0">{"".join(items)}</ol>'
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
