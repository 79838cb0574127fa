"""Our exception types -> HTTP status codes: the one mapping the API edge uses (the pipeline
never sees HTTP).  Its own module so that routes (the chat route's OpenAI-style errors) and the
app factory both read it without importing each other."""
from __future__ import annotations

from rag.errors import (
    DocumentConflict,
    DocumentNotFound,
    DocumentTooLarge,
    IndexDamaged,
    IndexIncompatible,
    IndexNotFound,
    InvalidRequest,
    MalformedBody,
    ModelLoadError,
    NotReady,
    PayloadTooLarge,
    RagError,
    StorageFull,
    UnsupportedDocument,
)

# First match wins: subclasses before their bases (DocumentTooLarge is an UnsupportedDocument).
STATUS_FOR_ERROR: list[tuple[type[RagError], int]] = [
    (PayloadTooLarge, 413),
    (DocumentTooLarge, 413),
    (MalformedBody, 400),
    (InvalidRequest, 422),
    (UnsupportedDocument, 415),
    (DocumentNotFound, 404),
    (DocumentConflict, 409),
    (NotReady, 503),
    (IndexNotFound, 503),
    (IndexIncompatible, 503),
    (ModelLoadError, 503),
    (StorageFull, 503),  # with Retry-After (rag/api/edge_errors.py)
    (RagError, 400),
]


def status_for(exc: RagError) -> int:
    return next(code for kind, code in STATUS_FOR_ERROR if isinstance(exc, kind))


# The service's own state, not the request, and the messages name folders on the server ("no
# index at /srv/rag/index", a model's path): clients get these instead, the server log the
# whole message (issue 20, item 13).
NO_INDEX = "no index yet: run `rag index` on the server"
_PUBLIC_DETAIL: list[tuple[type[RagError], str]] = [
    (IndexNotFound, NO_INDEX),
    (NotReady, NO_INDEX),
    (IndexDamaged, "a file of the index is damaged and could not be rebuilt (the server log names it)"),
    (IndexIncompatible, "the index cannot be read by this version of rag: re-index on the server (the server log says why)"),
    (ModelLoadError, "a model could not be loaded (the server log says why)"),
]


def public_detail(exc: RagError) -> str:
    """What a client is told about ``exc``: its message, or a fixed one for the server's state."""
    return next((detail for kind, detail in _PUBLIC_DETAIL if isinstance(exc, kind)), str(exc))
