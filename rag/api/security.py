"""API keys: who may change the corpus, and (optionally) who may read it.

Keys are bearer tokens (``Authorization: Bearer <key>``) taken from the environment:

* ``RAG_API_KEYS`` (comma-separated): may write (upload, delete, re-index) and read;
* ``RAG_READ_API_KEYS`` (comma-separated): may only read.

Every request goes through :func:`authorize`, installed once as an app-wide dependency, so a
route added later is covered without anyone remembering to protect it.  The access a request
needs is decided from its method and path (:func:`access_needed`):

* public: health probes, the web page shell and its static files;
* read: every GET, and the question endpoints that POST a question (``/v1/ask``, ``/v1/search``,
  ``/v1/chat/...``);
* write: every other POST/PUT/PATCH/DELETE (default deny: a new mutating route needs a key).

Writes always need a write key.  With no key configured at all, writes are accepted only when
the service listens on loopback (``RAG_HOST=127.0.0.1``, the default: only this machine can
reach it); a service bound to another address refuses every write until ``RAG_API_KEYS`` is
set.  Reads need a key only with ``RAG_REQUIRE_AUTH_FOR_READS=true``.

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

from rag.settings import Settings

log = logging.getLogger(__name__)

Access = Literal["public", "read", "write"]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PATHS = frozenset({"/", "/healthz", "/readyz", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)
# POST endpoints that only read: they carry a question, not a change to the corpus.
READ_POST_PREFIXES = ("/v1/ask", "/v1/search", "/v1/chat", "/v1/completions")

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
    open_writes: bool  # no write key configured and loopback only: local use without keys

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        write = tuple(_digest(k) for k in parse_keys(settings.api_keys.get_secret_value()))
        read = tuple(_digest(k) for k in parse_keys(settings.read_api_keys.get_secret_value()))
        if settings.require_auth_for_reads and not (write or read):
            raise ValueError("RAG_REQUIRE_AUTH_FOR_READS is on but no key is set: set RAG_API_KEYS or RAG_READ_API_KEYS")
        open_writes = not write and is_loopback_host(settings.host)
        if not write and not open_writes:
            log.warning("RAG_API_KEYS is not set and the service listens on %s: uploads and deletes are refused", settings.host)
        return cls(write, read, settings.require_auth_for_reads, open_writes)

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


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": 'Bearer realm="rag"'})


def check(keys: KeyRing, needed: Access, credentials: HTTPAuthorizationCredentials | None) -> Access | None:
    """Raise 401/403 unless ``credentials`` grant ``needed``; returns the caller's role."""
    if needed == "public":
        return None
    role = keys.role_of(credentials.credentials) if credentials is not None else None
    if needed == "read":
        if not keys.require_auth_for_reads:
            return role  # open reads: a client that always sends some token (OpenAI SDKs) is welcome
        if credentials is None:
            raise _unauthorized("this service needs an API key for reads: send 'Authorization: Bearer <key>'")
        if role is None:
            raise _unauthorized("invalid API key")
        return role
    if credentials is not None and role is None:
        raise _unauthorized("invalid API key")
    # write
    if role == "write":
        return role
    if role == "read":
        raise HTTPException(status_code=403, detail="this API key may only read; changing documents needs a key from RAG_API_KEYS")
    if keys.open_writes:
        return None
    if not keys.write:
        raise HTTPException(
            status_code=403,
            detail="changing documents is disabled: this service is reachable from the network and RAG_API_KEYS is not set",
        )
    raise _unauthorized("changing documents needs an API key: send 'Authorization: Bearer <key>'")


async def authorize(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> None:
    """The app-wide dependency (see create_app)."""
    keys: KeyRing | None = getattr(request.app.state, "keys", None)
    if keys is None:  # an app built without rag.api.security.setup: nothing to enforce
        return
    needed = access_needed(request.method, request.url.path)
    request.state.role = check(keys, needed, credentials)


def setup(app, settings: Settings) -> None:
    """Store the key ring on the app; create_app also installs :func:`authorize` on every route."""
    app.state.keys = KeyRing.from_settings(settings)
