"""Redirects point at a path on this service, never at a host the client named.

Starlette's trailing-slash redirect (``/v1/documents/`` -> ``/v1/documents``) writes an absolute
``Location`` from the request's ``Host`` header, which is the client's to write: ``Host:
evil.example`` got ``Location: http://evil.example/v1/documents`` (issue 20, item 13), a gift to
cache poisoning behind a shared proxy.  The service never redirects to another site, so every
absolute ``Location`` is cut to its path and query, which browsers resolve against the URL they
actually asked (RFC 9110 allows a relative reference).
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import FastAPI

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def relative_location(location: str) -> str:
    """``http://any.host/p?q`` -> ``/p?q``; a location without scheme and host is kept."""
    parts = urlsplit(location)
    if not (parts.scheme or parts.netloc):
        return location
    return urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))


class RelativeRedirects:
    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_relative(message: dict) -> None:
            if message["type"] == "http.response.start" and 300 <= message["status"] < 400:
                headers = [(k, relative_location(v.decode("latin-1")).encode("latin-1") if k.lower() == b"location" else v)
                           for k, v in message.get("headers", [])]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_relative)


def setup(app: FastAPI) -> None:
    app.add_middleware(RelativeRedirects)
