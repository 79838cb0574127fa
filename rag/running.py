"""Finding a running ``rag serve`` for an index, so ``rag ask`` can use it instead of loading models.

Loading the encoder and the reader costs ~10 s and ~1 GB per ``rag ask``; a running service
answers the same question in ~0.1 s.  ``rag serve`` registers itself in a small JSON file per
(index folder, port) under a per-user runtime folder, and removes it on exit.  ``rag ask`` reads
those files, skips ones whose process is gone or whose settings would answer differently, checks
``/readyz`` with a short timeout, and posts the question to ``/v1/ask`` (the same JSON it would
print itself).  Any failure means "no server": the caller then loads the models locally.
"""
from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

# /readyz answers in ~1 ms on loopback; 0.5 s leaves room for a busy machine while keeping a
# dead or hung server from delaying the local fallback noticeably.
READY_TIMEOUT_S = 0.5
# One question on a loaded service takes ~0.1 s on 2 cores (eval/BENCHMARKS.md); 60 s covers
# a cold ONNX export or a large top_k before giving up and answering locally.
ASK_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ServerInfo:
    url: str  # base URL reachable from this machine, e.g. http://127.0.0.1:8000
    pid: int
    index_dir: str  # resolved path
    reader: str
    answer_threshold: float | None


# Loopback requests never go through an HTTP proxy from the environment (http_proxy and friends).
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _key(index_dir: Path) -> str:
    return hashlib.sha256(str(Path(index_dir).resolve()).encode()).hexdigest()[:16]


def local_url(host: str, port: int) -> str:
    """The URL a client on this machine uses for a server bound to ``host``."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def register(folder: Path, info: ServerInfo, port: int) -> Path:
    """Write ``info`` into ``folder`` (rag.settings.user_runtime_dir) for `rag ask` to find."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"{_key(Path(info.index_dir))}-{port}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(info)), encoding="utf-8")
    os.replace(tmp, path)  # a reader never sees half a file
    return path


def unregister(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def candidates(folder: Path, index_dir: Path) -> list[ServerInfo]:
    """Servers registered in ``folder`` for ``index_dir`` whose process still exists (stale files are removed)."""
    found = []
    for path in sorted(folder.glob(f"{_key(index_dir)}-*.json")):
        try:
            info = ServerInfo(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if _alive(info.pid):
            found.append(info)
        else:
            unregister(path)
    return found


def ready(url: str, timeout: float = READY_TIMEOUT_S) -> bool:
    try:
        with _opener.open(url + "/readyz", timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


def ask_remote(url: str, question: str, top_k: int | None, mode: str | None, api_key: str | None = None) -> dict | None:
    """POST /v1/ask; the response body, or None when the server did not answer with 200."""
    body: dict = {"question": question}
    if top_k is not None:
        body["top_k"] = top_k
    if mode is not None:
        body["mode"] = mode
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url + "/v1/ask", data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=ASK_TIMEOUT_S) as response:
            return json.loads(response.read().decode("utf-8"))
    except (OSError, urllib.error.URLError, ValueError):
        return None


def find_server(folder: Path, index_dir: Path, reader: str, answer_threshold: float | None) -> ServerInfo | None:
    """A ready server registered in ``folder`` on ``index_dir`` that reads with the same reader and threshold, if any."""
    for info in candidates(folder, index_dir):
        if info.reader == reader and info.answer_threshold == answer_threshold and ready(info.url):
            return info
    return None
