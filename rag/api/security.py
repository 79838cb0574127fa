"""API keys: who may change the corpus, and (optionally) who may read it.

Keys are bearer tokens (``Authorization: Bearer <key>``) taken from the environment:

* ``RAG_API_KEYS`` (comma-separated): may write (upload, delete, re-index) and read;
* ``RAG_READ_API_KEYS`` (comma-separated): may only read.

Every request goes through :class:`AccessControl`, an ASGI middleware in front of every route
(including the ones FastAPI adds itself: ``/openapi.json``, ``/docs``, ``/redoc``, which an
app-wide dependency does not reach), so a route added later is covered without anyone
remembering to protect it; :func:`authorize` runs the same check as an app-wide dependency,
which also puts the bearer scheme in the OpenAPI document.  The access a request needs is
decided from its method and path (:func:`access_needed`):

* public: health probes and the web page's static files;
* read: every GET, and the question endpoints that POST a question (``/v1/ask``, ``/v1/search``,
  ``/v1/chat/...``);
* write: every other POST/PUT/PATCH/DELETE (default deny: a new mutating route needs a key).

Writes always need a write key.  With no key configured at all, writes are accepted only when
the connection came in on a loopback socket (the server's own address for the connection,
``scope["server"]``, not the ``RAG_HOST`` setting: ``uvicorn --host 0.0.0.0`` with RAG_HOST
unset used to accept them) and RAG_HOST is loopback too; a service reachable from the network
refuses every write until ``RAG_API_KEYS`` is set.  Such keyless writes must also show they
are not a cross-site browser request (rag/api/write_guard.py).  Reads need a key only with
``RAG_REQUIRE_AUTH_FOR_READS=true``.

Keys are compared in constant time (``hmac.compare_digest`` over SHA-256 digests, against every
configured key without stopping early), so response timing reveals nothing about a key.
While reads are open, a read with an unknown key is served (OpenAI SDKs always send one).
401 means "no usable credentials" (missing header, wrong scheme, unknown key) and carries
``WWW-Authenticate: Bearer``; 403 means "known, but not allowed" (a read-only key trying to
write, or writes switched off because no write key is configured).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from dataclasses import dataclass
from typing import Literal

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag.api.asgi import send_json
from rag.api.write_guard import Refused, Scope, check_content_type, check_cross_site, header
from rag.settings import Settings

log = logging.getLogger(__name__)

Access = Literal["public", "read", "write"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# "/" (the chat page) is a read: with RAG_REQUIRE_AUTH_FOR_READS it answers 401 like every page.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
# POST endpoints that only read: they carry a question, not a change to the corpus.
READ_POST_PREFIXES = ("/v1/ask", "/v1/search", "/v1/chat", "/v1/completions", "/mcp")  # MCP tools only read

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="APIKey",
    description="An API key from RAG_API_KEYS (read and write) or RAG_READ_API_KEYS (read only).",
)


def _under(path: str, prefix: str) -> bool:
    """``/v1/ask`` covers ``/v1/ask``, ``/v1/ask/...`` and custom methods like ``/v1/ask:batch``."""
    return path == prefix or path.startswith((prefix + "/", prefix + ":"))


def access_needed(method: str, path: str) -> Access:
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
        return "public"
    if method.upper() in SAFE_METHODS or any(_under(path, p) for p in READ_POST_PREFIXES):
        return "read"
    return "write"


def parse_keys(raw: str) -> tuple[str, ...]:
    return tuple(k for k in (part.strip() for part in raw.split(",")) if k)


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def is_loopback_host(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class KeyRing:
    """Digests of the configured keys; ``role_of`` checks a token against all of them."""

    write: tuple[bytes, ...]
    read: tuple[bytes, ...]
    require_auth_for_reads: bool
    open_writes: bool  # no write key and RAG_HOST loopback: keyless writes on loopback sockets
    settings: Settings

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        write = tuple(_digest(k) for k in parse_keys(settings.api_keys.get_secret_value()))
        read = tuple(_digest(k) for k in parse_keys(settings.read_api_keys.get_secret_value()))
        if settings.require_auth_for_reads and not (write or read):
            raise ValueError("RAG_REQUIRE_AUTH_FOR_READS is on but no key is set: set RAG_API_KEYS or RAG_READ_API_KEYS")
        open_writes = not write and is_loopback_host(settings.host)
        if not write and not open_writes:
            log.warning("RAG_API_KEYS is not set and the service listens on %s: uploads and deletes are refused", settings.host)
        return cls(write, read, settings.require_auth_for_reads, open_writes, settings)

    def role_of(self, token: str) -> Access | None:
        """"write", "read" or None; always compares against every key (constant time)."""
        digest = _digest(token)
        is_write = False
        is_read = False
        for known in self.write:
            is_write |= hmac.compare_digest(digest, known)
        for known in self.read:
            is_read |= hmac.compare_digest(digest, known)
        return "write" if is_write else "read" if is_read else None


def _unauthorized(message: str) -> Refused:
    return Refused(401, message, {"WWW-Authenticate": 'Bearer realm="rag"'})


def bearer_token(scope: Scope) -> str | None:
    """The token of ``Authorization: Bearer <token>``; None for no header or another scheme."""
    value = header(scope, b"authorization")
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def on_loopback_socket(scope: Scope) -> bool:
    """Whether this connection came in on a loopback address of the server (``scope["server"]``
    is the socket's own address: 127.0.0.1 for a loopback bind, the interface address for a
    connection to 0.0.0.0 from another machine).  Unix sockets and unknown servers: False."""
    server = scope.get("server")
    return bool(server) and is_loopback_host(str(server[0]))


def check(keys: KeyRing, needed: Access, token: str | None, loopback_socket: bool) -> Access | None:
    """Raise 401/403 unless ``token`` grants ``needed``; returns the caller's role."""
    if needed == "public":
        return None
    role = keys.role_of(token) if token is not None else None
    if needed == "read":
        if not keys.require_auth_for_reads:
            return role  # open reads: a client that always sends some token (OpenAI SDKs) is welcome
        if token is None:
            raise _unauthorized("this service needs an API key for reads: send 'Authorization: Bearer <key>'")
        if role is None:
            raise _unauthorized("invalid API key")
        return role
    if token is not None and role is None:
        raise _unauthorized("invalid API key")
    # write
    if role == "write":
        return role
    if role == "read":
        raise Refused(403, "this API key may only read; changing documents needs a key from RAG_API_KEYS")
    if keys.open_writes and loopback_socket:
        return None
    if not keys.write:
        raise Refused(403, "changing documents is disabled: this service is reachable from the network and RAG_API_KEYS is not set")
    raise _unauthorized("changing documents needs an API key: send 'Authorization: Bearer <key>'")


def enforce(keys: KeyRing, scope: Scope) -> Access | None:
    """Every check of a request, in order: key (401/403), Content-Type (415), then for a
    keyless write the cross-site proof (403).  Returns the caller's role."""
    needed = access_needed(scope["method"], scope["path"])
    role = check(keys, needed, bearer_token(scope), on_loopback_socket(scope))
    if needed != "public":
        check_content_type(scope, needed)
    if needed == "write" and role != "write":
        check_cross_site(scope, keys.settings)
    return role


async def authorize(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """The app-wide dependency (see create_app): the same check as :class:`AccessControl`."""
    keys: KeyRing | None = getattr(request.app.state, "keys", None)
    if keys is None:  # an app built without rag.api.security.setup: nothing to enforce
        return
    try:
        request.state.role = enforce(keys, request.scope)
    except Refused as exc:
        raise HTTPException(exc.status, exc.detail, exc.headers or None) from exc


class AccessControl:
    """ASGI middleware: :func:`enforce` for every HTTP request, before any route runs."""

    def __init__(self, app, keys: KeyRing):
        self.app = app
        self.keys = keys

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] != "OPTIONS":
            try:
                enforce(self.keys, scope)
            except Refused as exc:
                await send_json(send, exc.status, {"detail": exc.detail}, exc.headers)
                return
        await self.app(scope, receive, send)


def setup(app, settings: Settings) -> None:
    """Store the key ring and install :class:`AccessControl` (innermost of the middlewares, so
    CORS lets browsers read its answers); create_app also installs :func:`authorize`."""
    app.state.keys = KeyRing.from_settings(settings)
    app.add_middleware(AccessControl, keys=app.state.keys)
