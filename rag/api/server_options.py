"""uvicorn settings for serving this app safely: slow clients, proxies, header sizes.

``rag serve`` (and anyone embedding the app) should start uvicorn with
``uvicorn.Config(app, **uvicorn_options(settings))``.  What each option is for:

* ``http=``: uvicorn's h11 protocol plus a header deadline.  uvicorn has no timeout for a
  request's headers (its keep-alive timer is cancelled by the first byte), so a client sending
  one header byte at a time held a connection forever; here the headers must be complete
  within ``RAG_HEADER_TIMEOUT_S`` (10 s) of the connection or of the previous answer, else the
  connection is closed.  Bodies: rag/api/limits.py (408 after ``RAG_BODY_IDLE_TIMEOUT_S``).
* connections per client and in all (``RAG_MAX_CONNECTIONS_PER_CLIENT``, ``RAG_MAX_CONNECTIONS``):
  over a cap the client's oldest connection still waiting for headers is closed, else the new
  one gets 503 (rag/api/connections.py).
* ``timeout_keep_alive=5``: an idle kept-alive connection is closed after 5 s (uvicorn's
  default, stated so it is not lost).
* ``h11_max_incomplete_event_size=16 KiB``: the request line and headers together (h11's
  default; 8 KiB is the common limit of proxies, 16 KiB leaves room for long bearer tokens).
* ``proxy_headers=False``: uvicorn otherwise replaces the client address with
  ``X-Forwarded-For`` from 127.0.0.1 by default, so any local process (or a local proxy passing
  the header on) chose its own rate-limit identity (issue 11: 50 of 50 spoofed requests
  served).  The app reads the header itself, only from ``RAG_TRUSTED_PROXIES``
  (rag/api/budget.py).
* ``server_header=False``: no ``server: uvicorn`` banner.
"""
from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from rag.api.connections import ConnectionTracker, busy_response
from rag.settings import Settings

KEEP_ALIVE_S = 5
MAX_HEADER_BYTES = 16 * 1024


class HeaderDeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol; a request's headers must arrive within ``header_timeout`` seconds,
    and each connection is admitted by ``tracker`` (None: no connection caps)."""

    header_timeout: float = 10.0
    tracker: ConnectionTracker | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        if self.tracker is not None and not self.tracker.admit(self.client[0] if self.client else "unknown", self):
            # Every connection of this client (or of the server) is running a request: refuse
            # this one at once instead of holding a descriptor for it.
            self.transport.write(busy_response("too many open connections; retry later (RAG_MAX_CONNECTIONS_PER_CLIENT, RAG_MAX_CONNECTIONS)"))
            self.transport.close()
            return
        self._arm_header_timer()

    def idle(self) -> bool:
        """Waiting for a request's headers (a new connection or a kept-alive one), nothing running."""
        return self.conn.their_state is h11.IDLE and (self.cycle is None or self.cycle.response_complete)

    def drop(self) -> None:
        """Closed to make room for another connection (rag/api/connections.py)."""
        if not self.transport.is_closing():
            self.transport.close()

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_timeout_expired)

    def _cancel_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _header_timeout_expired(self) -> None:
        self._header_timer = None
        # Still waiting for (the rest of) the headers: no request is running, nothing to answer.
        if self.idle():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # the headers are complete: a request runs
            self._cancel_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_header_timer()  # the next request on this connection gets the same deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        if self.tracker is not None:
            self.tracker.release(self)
        super().connection_lost(exc)


def protocol_with_header_timeout(seconds: float, tracker: ConnectionTracker | None = None) -> type[HeaderDeadlineH11Protocol]:
    return type("HeaderDeadlineH11Protocol", (HeaderDeadlineH11Protocol,), {"header_timeout": float(seconds), "tracker": tracker})


def connection_tracker(settings: Settings) -> ConnectionTracker:
    return ConnectionTracker(settings.max_connections_per_client, settings.max_connections, settings.trusted_proxies)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``/``uvicorn.run`` besides the app (module doc).
    Call it after the open-file limit is set (``check_file_limit``): the total connection cap
    follows the limit in force."""
    return {
        "host": settings.host,
        "port": settings.port,
        "http": protocol_with_header_timeout(settings.header_timeout_s, connection_tracker(settings)),
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "proxy_headers": False,
        "server_header": False,
    }
