"""The project's own exception types; the API edge maps them to HTTP status codes."""


class RagError(Exception):
    """Base class for every error the pipeline raises on purpose."""


class InvalidRequest(RagError):
    """The caller asked for something malformed (empty question, bad top_k, ...)."""


class MalformedBody(InvalidRequest):
    """A request body that cannot be parsed at all (JSON nested deeper than the parser
    recurses): HTTP 400, as FastAPI answers for the bodies it parses itself."""


class UnsupportedDocument(RagError):
    """A file type or payload that ingestion cannot read."""


class DocumentNotFound(RagError):
    pass


class IndexNotFound(RagError):
    pass


class IndexIncompatible(RagError):
    """The index on disk was built with another model or format version."""


class ModelLoadError(RagError):
    pass


class NotReady(RagError):
    """Models or index are not loaded yet."""


class DocumentTooLarge(UnsupportedDocument):
    """A file over a size or work limit (bytes, PDF pages, parse time, unpacked size): HTTP 413,
    or skipped by ``rag index``."""


class DocumentConflict(RagError):
    """An upload would silently replace a different document with the same id: HTTP 409."""


class PayloadTooLarge(RagError):
    """Too many bytes or too many documents in one request: HTTP 413."""


class StorageFull(RagError):
    """The index cannot be written: the disk (or a quota) is full.  Nothing of the write was
    committed and the previous version is still served: HTTP 503 with Retry-After."""


class IndexDamaged(IndexIncompatible):
    """A derived file of the index (a vector segment's file) is unreadable and could not be
    rebuilt from store.sqlite; the message names the file, ``segment`` the segment it is in."""

    def __init__(self, message: str, segment: str = "", path: str = ""):
        super().__init__(message)
        self.segment, self.path = segment, path
