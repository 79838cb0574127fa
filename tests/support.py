"""Helpers shared by test modules (imported as ``from support import ...``); the pytest
fixtures built on them live in conftest.py."""
from __future__ import annotations

import io
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rag.pipeline import Pipeline
from rag.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
# Browser tests drive Debian's chromium (Playwright cannot download its own browsers here).
CHROMIUM = Path("/usr/bin/chromium")
needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")


def assert_offsets(result: dict, documents: dict[str, str]) -> None:
    """The offset invariants of every answer in an ask response (dict form)."""
    for answer in result["answers"]:
        c = answer["citation"]
        assert c["paragraph_text"][c["answer_start"] : c["answer_end"]] == answer["text"]
        assert documents[c["document_id"]][c["doc_start"] : c["doc_end"]] == c["paragraph_text"]
        assert answer["text"] in answer["context"]
        assert c["paragraph_text"][answer["context_start"] : answer["context_end"]] == answer["context"]
        assert answer["context_start"] <= c["answer_start"] and c["answer_end"] <= answer["context_end"]
    for passage in result["passages"]:
        assert documents[passage["document_id"]][passage["doc_start"] : passage["doc_end"]] == passage["text"]


def indexed_pipeline(base: Path, **overrides) -> Pipeline:
    """The default corpus copied to ``base/corpus`` and indexed into ``base/index``, warmed up.

    Hashing encoder and heuristic reader (~50 ms) unless ``overrides`` (Settings fields) say otherwise.
    """
    corpus = base / "corpus"
    shutil.copytree(CORPUS, corpus)
    fields = {"index_dir": base / "index", "corpus_dir": corpus, "embedding_model": "hashing:256", "reader": "heuristic"}
    pipeline = Pipeline(Settings(**{**fields, **overrides}))
    pipeline.warm_up()
    pipeline.index_paths([corpus])
    return pipeline


@contextmanager
def serve(app, start_timeout: float = 15, **uvicorn_config) -> Iterator[str]:
    """uvicorn in a background thread on a free loopback port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", **uvicorn_config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(start_timeout)
        sock.close()


def make_pdf(pages: list[list[tuple[float, float, float, str, bool | str]]], title: str = "") -> bytes:
    """A PDF whose pages hold (x, y, size, text, bold) lines in Helvetica (bold: True for
    Helvetica-Bold, "mono" for Courier); y from the bottom."""
    # 1 catalog, 2 page tree, 3-4 fonts, 5 info, 6 font, then a content stream and a page per page.
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", "", "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold >>", f"<< /Title ({title}) >>",
               "<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>"]
    fonts = {False: "F1", True: "F2", "mono": "F3"}
    kids = []
    for lines in pages:
        stream = "".join(f"BT /{fonts[bold]} {size} Tf {x} {y} Td ({text}) Tj ET\n" for x, y, size, text, bold in lines)
        objects.append(f"<< /Length {len(stream)} >>\nstream\n{stream}endstream")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {len(objects)} 0 R "
                       "/Resources << /Font << /F1 3 0 R /F2 4 0 R /F3 6 0 R >> >> >>")
        kids.append(len(objects))
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n{obj}\nendobj\n".encode("latin-1"))
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer << /Size {len(objects) + 1} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode())
    return out.getvalue()


def one_page_pdf(lines: list[str]) -> bytes:
    """A one-page PDF of 12 pt lines, 16 pt apart."""
    return make_pdf([[(72, 720 - 16 * i, 12, line, False) for i, line in enumerate(lines)]])


def column(x: float, top: float, lines: list[str]) -> list[tuple[float, float, float, str, bool]]:
    return [(x, top - 12 * i, 10, text, False) for i, text in enumerate(lines)]


def browser_page(browser, **context):
    """A new page in a new browser context, and the list its console errors and page errors go to."""
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(10_000)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    return page, problems


def milvus_lite_database(tmp_path_factory, name: str) -> str:
    """A fresh Milvus Lite database file for one module's session (starting it takes ~1 s);
    skips the caller when milvus-lite is missing or cannot start on this machine."""
    try:
        import milvus_lite  # noqa: F401
        from rag.store.milvus_store import get_client
    except ImportError as exc:
        pytest.skip(f"Milvus Lite is not installed (pip install -e '.[milvus]'): {exc}")
    path = str(tmp_path_factory.mktemp(name) / "milvus.db")
    try:
        get_client(path).list_collections()
    except Exception as exc:  # noqa: BLE001 - any start-up failure means "cannot run here"
        pytest.skip(f"Milvus Lite cannot start on this machine: {exc}")
    return path
