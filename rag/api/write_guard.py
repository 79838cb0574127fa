"""What a request body must declare (415), and what a keyless write must prove (cross-site, 403).

Both run inside the access check (rag/api/security.py), so every route is covered.

Content types (415)
    A POST/PUT/PATCH that carries a body must say what it is: ``application/json`` everywhere,
    or ``multipart/form-data`` for a write (document upload).  A missing Content-Type is not
    read as JSON any more: a browser sends a ``Blob`` without a type cross-site with no preflight
    (issue 11 overwrote a document that way).

Keyless writes from browsers (403)
    On the local default (loopback, no ``RAG_API_KEYS``) anyone who can reach the socket may
    write, and a web page of another site can reach it through the visitor's browser.  Browsers
    only send "simple" requests across sites without asking first (a CORS preflight, which this
    service refuses unless ``RAG_CORS_ORIGINS`` says otherwise): GET/HEAD/POST with a form,
    multipart or text/plain body and no custom header.  So a keyless write is accepted only when
    it could not have been such a request:

    * it has an ``Origin`` header, and the origin is this service's (a loopback name or address
      on the port the connection came in on, or ``RAG_PUBLIC_URL``); any other ``Origin`` is
      refused, even a CORS-allowed one (those pages can send custom headers, so they need a key);
    * or, without ``Origin`` (curl, scripts), it carries ``X-Requested-With`` (any value), or a
      JSON body, or uses a method other than POST (DELETE, PUT, PATCH are never simple).

    A write with a key needs none of this: ``Authorization`` is itself a custom header.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from rag.settings import Settings

Scope = dict[str, Any]

JSON = "application/json"
MULTIPART = "multipart/form-data"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
PROOF_HEADER = b"x-requested-with"
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class Refused(Exception):
    """A request refused with ``status`` and a message (the middleware answers it as JSON)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def media_type(scope: Scope) -> str:
    """The Content-Type's essence ("application/json"), lower-case; "" when missing."""
    return (header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()


def has_body(scope: Scope) -> bool:
    length = header(scope, b"content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return header(scope, b"transfer-encoding") is not None


def check_content_type(scope: Scope, needed: str) -> None:
    """415 unless a body-carrying request declares a type its route reads."""
    if scope["method"] not in BODY_METHODS or not has_body(scope):
        return
    allowed = (JSON, MULTIPART) if needed == "write" else (JSON,)
    declared = media_type(scope)
    if declared not in allowed:
        what = f"Content-Type {declared!r}" if declared else "a request body without a Content-Type"
        raise Refused(415, f"{what} is not accepted here: send {' or '.join(allowed)}")


def _origin_of(url: str) -> tuple[str, str, int | None] | None:
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if not parts.scheme or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), parts.hostname.lower(), port if port is not None else default


def is_own_origin(origin: str, scope: Scope, settings: Settings) -> bool:
    """Whether ``origin`` is this service: its public URL, or a loopback name on the port the
    connection came in on (a page served by this service at http://localhost:PORT)."""
    theirs = _origin_of(origin)
    if theirs is None:
        return False
    if settings.public_url and theirs == _origin_of(settings.public_url):
        return True
    server = scope.get("server")
    if not server or server[1] is None:
        return False
    scheme, host, port = theirs
    own_hosts = _LOOPBACK_NAMES | {str(server[0]).lower()}
    return scheme == scope.get("scheme", "http") and host in own_hosts and port == int(server[1])


def check_cross_site(scope: Scope, settings: Settings) -> None:
    """403 unless a keyless write could not have been sent by another site's page (module doc)."""
    origin = header(scope, b"origin")
    if origin is not None and origin != "null":
        if is_own_origin(origin, scope, settings):
            return
        raise Refused(403, f"cross-site write refused: Origin {origin!r} is not this service; writes from other sites need an API key")
    if origin == "null":  # sandboxed frames, file:// pages: a browser, from nowhere we know
        raise Refused(403, "cross-site write refused: Origin 'null'; writes from other sites need an API key")
    if scope["method"] != "POST" or header(scope, PROOF_HEADER) or media_type(scope) == JSON:
        return
    raise Refused(403, _proof_missing(scope))


def _proof_missing(scope: Scope) -> str:
    """The refusal of a keyless form POST without proof, with a command that works when pasted:
    curl's -F upload is the first thing a newcomer tries (issue 21)."""
    server = scope.get("server")
    base = f"{scope.get('scheme', 'http')}://{_url_host(server[0])}:{server[1]}" if server and server[1] else "http://127.0.0.1:8000"
    path = scope.get("path", "/v1/documents")
    body = "-F file=@notes.txt" if path.rstrip("/") == "/v1/documents" else "-X POST"
    return (
        "a write without an API key must show it is not a cross-site form: add the header "
        f"'X-Requested-With: curl' (any value), e.g. curl -H 'X-Requested-With: curl' {body} {base}{path} "
        "(a JSON body or an API key also works)"
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in str(host) else str(host)
