"""Errors of the machine, not of the request, answered at the HTTP edge.

A full disk (``ENOSPC``, or a quota: ``EDQUOT``) while an upload or delete writes a new index
version is temporary and not the client's fault: 503 with ``Retry-After`` instead of a generic
500 (issue 11).  The previous index version stays live (versions are copy-on-write,
rag/store/builder.py).  Any other ``OSError`` is a real failure and stays a 500.
"""
from __future__ import annotations

import errno
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from rag.errors import StorageFull

log = logging.getLogger(__name__)

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
# Freeing disk space is an operator's job: minutes, not seconds.  A client retrying every 5
# minutes costs nothing meanwhile.
DISK_FULL_RETRY_AFTER_S = 300


async def os_error(request: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, OSError) or exc.errno not in DISK_FULL:
        raise exc  # not ours to map: the server error middleware answers 500 and logs it
    log.error("disk full while answering %s %s: %s", request.method, request.url.path, exc)
    detail = "the index cannot be written: the disk is full; the previous version is still served, retry later"
    return JSONResponse(status_code=503, content={"detail": detail}, headers={"Retry-After": str(DISK_FULL_RETRY_AFTER_S)})


async def storage_full(request: Request, exc: Exception) -> JSONResponse:
    """The index writer's own report of a full disk (rag/store/builder.py: SQLite's
    "database or disk is full" and tantivy's errors are not OSErrors); nothing was committed."""
    log.error("disk full while answering %s %s: %s (%s)", request.method, request.url.path, exc, exc.__cause__)
    return JSONResponse(status_code=503, content={"detail": str(exc)}, headers={"Retry-After": str(DISK_FULL_RETRY_AFTER_S)})


def setup(app: FastAPI) -> None:
    app.add_exception_handler(OSError, os_error)
    app.add_exception_handler(StorageFull, storage_full)  # more specific than the RagError handler: it wins
