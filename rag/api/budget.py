"""Who the client is (forwarded headers only from trusted proxies), and its budget of work.

Client address
    The rate limit and the work budget count per client address.  ``X-Forwarded-For`` names the
    client only when the peer that sent the request is a configured proxy
    (``RAG_TRUSTED_PROXIES``: addresses or CIDR networks); the client is then the right-most hop
    that is not itself a trusted proxy (the left part of the header is whatever the client wrote).
    From anyone else the header is ignored: issue 11 served 50 of 50 requests with spoofed
    addresses because loopback was trusted by default.  (uvicorn rewrites the client address
    from the same header by itself unless started with ``proxy_headers=False``:
    rag/api/server_options.py.)

Work budget (429)
    The request rate limit (rag/api/limits.py) counts requests, but one ``ask:batch`` request
    does 64 questions of work.  ``RAG_WORK_BUDGET`` (same notation, default ``2400/minute``)
    is charged by the routes before they work: a search query costs 1 unit, a question
    ``1 + reader_top_k`` (the retrieval and the passages the reader reads; reading is ~90% of
    an answer's time).  Over budget: 429 with ``Retry-After``, nothing done.
"""
from __future__ import annotations

import ipaddress
import math
import time
from typing import Any

from fastapi import Request
from starlette.exceptions import HTTPException

from rag.api.write_guard import header
from rag.settings import Settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
SEARCH_COST = 1


def question_cost(settings: Settings) -> int:
    return 1 + settings.reader_top_k


def parse_networks(raw: str | list[str]) -> tuple[Network, ...]:
    networks = []
    parts = raw.split(",") if isinstance(raw, str) else raw
    for part in (p.strip() for p in parts):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"RAG_TRUSTED_PROXIES: {part!r} is not an address or network: {exc}") from exc
    return tuple(networks)


class ClientAddress:
    """``client_address(scope)``: the peer, or the client named by a trusted proxy."""

    def __init__(self, trusted_proxies: str | list[str]):
        self.networks = parse_networks(trusted_proxies)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def __call__(self, scope: dict[str, Any]) -> str:
        peer = str((scope.get("client") or ("unknown", 0))[0])
        if not self.networks or not self._trusted(peer):
            return peer
        forwarded = header(scope, b"x-forwarded-for")
        hops = [hop.strip() for hop in (forwarded or "").split(",") if hop.strip()]
        for hop in reversed(hops):
            if not self._trusted(hop):
                return hop[:64]
        return hops[0][:64] if hops else peer


class WorkBudget:
    """A moving-window budget per client address, charged by units of work."""

    def __init__(self, spec: str, client_address: ClientAddress):
        from limits import parse_many
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        try:
            self.items = parse_many(spec)
        except ValueError as exc:
            raise ValueError(f"RAG_WORK_BUDGET={spec!r} is not a rate like '2400/minute': {exc}") from exc
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.client_address = client_address

    def charge(self, scope: dict[str, Any], units: int) -> None:
        """Take ``units`` from the client's budget, or raise 429 (nothing is taken then
        from the windows not yet charged)."""
        client = self.client_address(scope)
        for item in self.items:
            if units > item.amount:
                raise HTTPException(
                    429, f"this request costs {units} units of work, more than the whole budget of {item} (RAG_WORK_BUDGET); send fewer questions"
                )
            if not self.limiter.hit(item, "work", client, cost=units):
                reset = self.limiter.get_window_stats(item, "work", client).reset_time
                retry = max(1, math.ceil(reset - time.time()))
                raise HTTPException(
                    429,
                    f"work budget exceeded: this request costs {units} units of work and each client may spend "
                    f"{item} (RAG_WORK_BUDGET); retry in {retry} s",
                    headers={"Retry-After": str(retry)},
                )


def charge(request: Request, units: int) -> None:
    """Charge the app's work budget for this request (no budget configured: free)."""
    budget: WorkBudget | None = getattr(request.app.state, "work_budget", None)
    if budget is not None:
        budget.charge(request.scope, units)
