"""Connections: a cap per client and in all, and the file-descriptor limit checked at start-up.

With a soft file-descriptor limit of 1,024 (systemd's default), 1,200 connections that never
finished their headers made 82% of /healthz calls fail: every descriptor was taken, so
``accept()`` failed (asyncio then stops accepting for a second at a time); slow bodies let one
client hold 300 connections (issue 20, item 7).  Here:

* **per client** (the peer address; a trusted proxy, ``RAG_TRUSTED_PROXIES``, is exempt: it
  speaks for many clients): at most ``RAG_MAX_CONNECTIONS_PER_CLIENT`` (64) open connections.
  A new one over the cap first closes that client's oldest *idle* connection (one waiting for
  request headers, new or kept alive); when all of them are running requests, the new one is
  answered 503 with ``Retry-After`` and closed;
* **in all**: at most ``RAG_MAX_CONNECTIONS`` (0: three quarters of the soft descriptor limit,
  the rest is for index files, SQLite, the parse workers).  Over it, the oldest idle
  connection of the client holding most connections is closed, else the new one gets 503;
* **descriptors** (``check_file_limit``, called by ``rag serve``): the soft ``RLIMIT_NOFILE``
  is raised to the hard limit; when even that is under ``MIN_FILE_DESCRIPTORS`` a warning says
  so (and the total cap above follows whatever the limit is).

Closing idle connections first means a client that sends its request at once (a health probe,
a browser) always gets in, while one that opens connections and sends nothing keeps at most
its cap of them.  Header and body deadlines (rag/api/server_options.py, rag/api/limits.py)
bound how long each is held.
"""
from __future__ import annotations

import ipaddress
import logging
import resource
import threading
from collections import OrderedDict
from typing import Any, Protocol

log = logging.getLogger(__name__)

# The service keeps ~100 descriptors of its own (index segments, SQLite per thread, parse
# workers' pipes); 4,096 leaves room for ~3,000 clients.  systemd's default soft limit is 1,024.
MIN_FILE_DESCRIPTORS = 4096
DEFAULT_PER_CLIENT = 64
# When RAG_MAX_CONNECTIONS is 0: this share of the soft descriptor limit, never fewer than 64.
SHARE_OF_DESCRIPTORS = 0.75
BUSY = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"


class Tracked(Protocol):
    def idle(self) -> bool: ...
    def drop(self) -> None: ...


def check_file_limit(minimum: int = MIN_FILE_DESCRIPTORS) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; warn when the result is under ``minimum``.
    Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            log.info("raised the open-file limit from %d to %d", soft, wanted)
            soft = wanted
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d: %s", soft, exc)
    if soft != resource.RLIM_INFINITY and soft < minimum:
        log.warning("the open-file limit is %d (hard limit %s): under load the service can run out of descriptors; "
                    "raise it to at least %d (LimitNOFILE= in systemd, --ulimit nofile= in Docker; docs/deploy.md)",
                    soft, hard, minimum)
    return int(soft) if soft != resource.RLIM_INFINITY else 1 << 20


def total_cap(configured: int) -> int:
    if configured > 0:
        return configured
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft = soft if soft != resource.RLIM_INFINITY else 1 << 20
    return max(64, int(soft * SHARE_OF_DESCRIPTORS))


class ConnectionTracker:
    """Open connections by client, oldest first; decides whether a new connection may stay."""

    def __init__(self, per_client: int = DEFAULT_PER_CLIENT, total: int = 0, exempt: tuple[str, ...] | list[str] = ()):
        self.per_client = per_client
        self.total = total_cap(total)
        self.exempt = tuple(ipaddress.ip_network(n, strict=False) for n in exempt)
        self._by_client: dict[str, OrderedDict[int, Tracked]] = {}
        self._client_of: dict[int, str] = {}
        self._open = 0
        self._lock = threading.Lock()  # connections are made on the loop; tests and metrics read from threads
        self.evicted = 0
        self.refused = 0

    def _exempt(self, client: str) -> bool:
        try:
            address = ipaddress.ip_address(client)
        except ValueError:
            return False
        return any(address in network for network in self.exempt)

    @staticmethod
    def _oldest_idle(connections: OrderedDict[int, Tracked], taken: list[Tracked]) -> Tracked | None:
        for connection in connections.values():
            if connection.idle() and connection not in taken:
                return connection
        return None

    def admit(self, client: str, connection: Tracked) -> bool:
        """Register a new connection, closing idle ones to make room; False when it must be
        refused (the caller answers 503 and closes it)."""
        with self._lock:
            mine = self._by_client.get(client, OrderedDict())
            victims: list[Tracked] = []
            if self.per_client > 0 and len(mine) >= self.per_client and not self._exempt(client):
                victim = self._oldest_idle(mine, victims)
                if victim is None:
                    self.refused += 1
                    return False
                victims.append(victim)
            if self._open - len(victims) >= self.total:
                busiest = max(self._by_client.values(), key=len)
                victim = self._oldest_idle(busiest, victims)
                for others in self._by_client.values():
                    if victim is not None:
                        break
                    victim = self._oldest_idle(others, victims)
                if victim is None:
                    self.refused += 1
                    return False
                victims.append(victim)
            for victim in victims:
                self._forget(victim)
            self._by_client.setdefault(client, OrderedDict())[id(connection)] = connection
            self._client_of[id(connection)] = client
            self._open += 1
            self.evicted += len(victims)
        for victim in victims:
            victim.drop()
        return True

    def _forget(self, connection: Tracked) -> None:
        client = self._client_of.pop(id(connection), None)
        if client is None:
            return
        connections = self._by_client.get(client)
        if connections is not None and connections.pop(id(connection), None) is not None:
            self._open -= 1
            if not connections:
                del self._by_client[client]

    def release(self, connection: Tracked) -> None:
        with self._lock:
            self._forget(connection)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"open": self._open, "clients": len(self._by_client), "evicted": self.evicted, "refused": self.refused,
                    "total_cap": self.total, "per_client_cap": self.per_client}


def busy_response(message: str) -> bytes:
    body = ('{"detail": "%s"}' % message.replace('"', "'")).encode()
    return BUSY % (len(body), body)
