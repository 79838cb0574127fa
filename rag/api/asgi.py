"""Raw ASGI helpers shared by the middlewares (limits, access checks)."""
from __future__ import annotations

import json

from starlette.types import Send


async def send_json(send: Send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    """A complete JSON response from a middleware, before any route runs."""
    payload = json.dumps(body).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})
