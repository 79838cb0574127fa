"""The MCP server (rag/mcp_server.py) through the official SDK's own client, on both transports.

* stdio: ``rag mcp`` spawned as desktop clients spawn it, on a small index (hashing encoder,
  heuristic reader);
* streamable HTTP: a running ``rag serve`` (a child process on 127.0.0.1) at ``/mcp``, with API
  keys: refused without one, as the API refuses, and served with one.

The same checks run on both: answers with their quotes and citations (offsets checked against
the document resource), the abstention's message and cause, a bad argument (a tool error, and the
server keeps serving), reading and listing documents.  The SDK is the optional extra [mcp] (in
[test], so CI runs these); without it they skip, and the extra's absence is tested on its own.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import anyio
import httpx
import pytest

from rag.abstention import NO_ANSWER_MESSAGE, Cause
from rag.pipeline import Pipeline
from rag.settings import Settings
from support import CORPUS, ROOT, serve

HAVE_MCP = importlib.util.find_spec("mcp") is not None
needs_mcp = pytest.mark.skipif(not HAVE_MCP, reason="the optional extra [mcp] is not installed")

MODEL = "hashing:256"
QUESTION = "Who was NATO's first Secretary General?"
ANSWER = "Lord Hastings Lionel Ismay"
# The heuristic reader finds no span for it in the default corpus.
UNANSWERABLE = "What is the boiling point of mercury on Venus?"
TOOLS = {"ask", "search", "get_document", "list_documents"}
WRITE_KEY, READ_KEY = "mcp-write-key", "mcp-read-key"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(RAG_EMBEDDING_MODEL=MODEL, RAG_READER="heuristic", RAG_LOG_JSON="false", **extra)
    return env


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("mcp")
    shutil.copytree(CORPUS, base / "corpus")
    Pipeline(Settings(index_dir=base / "index", embedding_model=MODEL, reader="heuristic")).index_paths([base / "corpus"])
    return base / "index"


def _text(result) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


async def check_tools(client) -> None:
    """What every transport must serve (``client``: an SDK ``Client``, connected)."""
    import jsonschema

    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.output_schema, f"{tool.name} has no output schema"
        assert "ctx" not in tool.input_schema["properties"]

    # an answer: its quote, its citation, and offsets that hold in the document resource
    result = await client.call_tool("ask", {"question": QUESTION})
    assert not result.is_error, _text(result)
    jsonschema.validate(result.structured_content, tools["ask"].output_schema)
    out = result.structured_content
    assert out["answered"] is True and out["no_answer"] is None
    best = out["answers"][0]
    assert best["text"] == ANSWER
    c = best["citation"]
    assert c["paragraph_text"][c["answer_start"] : c["answer_end"]] == best["text"]
    assert c["paragraph_text"][best["context_start"] : best["context_end"]] == best["context"]
    assert c["title"] and c["document_id"] and 0 < best["score"] <= 1
    assert c["uri"] == f"rag://documents/{c['document_id']}"
    document = (await client.read_resource(c["uri"])).contents[0]
    assert document.mime_type == "text/plain"
    assert document.text[c["doc_start"] : c["doc_end"]] == c["paragraph_text"]
    text = _text(result)
    assert ANSWER in text and c["uri"] in text and f"paragraph {c['paragraph_index']}" in text

    # no answer: the plain-language message, and the cause for programs
    result = await client.call_tool("ask", {"question": UNANSWERABLE})
    assert not result.is_error, _text(result)
    jsonschema.validate(result.structured_content, tools["ask"].output_schema)
    out = result.structured_content
    assert out["answered"] is False and out["answers"] == []
    assert out["no_answer"]["message"] == NO_ANSWER_MESSAGE
    assert out["no_answer"]["cause"] in {cause.value for cause in Cause}
    assert _text(result).startswith(NO_ANSWER_MESSAGE) and out["no_answer"]["reason"] in _text(result)

    # bad arguments: a tool error naming the problem; the server keeps serving
    for arguments, expected in [({"question": QUESTION, "top_k": 0}, "top_k"), ({"question": "   "}, "the question is empty"),
                                ({"question": QUESTION, "mode": "psychic"}, "mode"), ({}, "question")]:
        result = await client.call_tool("ask", arguments)
        assert result.is_error and expected in _text(result), (arguments, _text(result))
    result = await client.call_tool("get_document", {"document_id": "no-such-document"})
    assert result.is_error and "no document with id 'no-such-document'" in _text(result)

    # search: passages with their documents and offsets
    result = await client.call_tool("search", {"query": "Secretary General", "top_k": 3})
    assert not result.is_error, _text(result)
    jsonschema.validate(result.structured_content, tools["search"].output_schema)
    passages = result.structured_content["passages"]
    assert 1 <= len(passages) <= 3 and all(p["uri"].startswith("rag://documents/") for p in passages)

    # list_documents, a page at a time
    result = await client.call_tool("list_documents", {"limit": 1})
    jsonschema.validate(result.structured_content, tools["list_documents"].output_schema)
    first = result.structured_content
    assert len(first["documents"]) == 1 and first["next_after"] == first["documents"][0]["document_id"]
    second = (await client.call_tool("list_documents", {"limit": 1, "after": first["next_after"]})).structured_content
    assert len(second["documents"]) == 1 and second["next_after"] is None
    ids = {first["documents"][0]["document_id"], second["documents"][0]["document_id"]}
    assert c["document_id"] in ids and "/" not in first["documents"][0]["source_path"]

    # get_document: the cited paragraph, then the text a range at a time
    result = await client.call_tool("get_document", {"document_id": c["document_id"], "start": c["paragraph_index"], "limit": 1})
    assert not result.is_error, _text(result)
    jsonschema.validate(result.structured_content, tools["get_document"].output_schema)
    page = result.structured_content
    assert [p["paragraph_index"] for p in page["paragraphs"]] == [c["paragraph_index"]]
    assert document.text[page["text_start"] : page["text_end"]] == page["text"]
    assert c["paragraph_text"] in page["text"] and c["paragraph_text"] in _text(result)
    pieces, start = [], 0
    while start is not None:
        page = (await client.call_tool("get_document", {"document_id": c["document_id"], "start": start, "limit": 5})).structured_content
        pieces.append(page["text"])
        start = page["next_start"]
    assert "".join(pieces) == document.text  # consecutive ranges tile the canonical text

    # resources: the documents are listed; an unknown one is an error, not a crash
    listed = {str(r.uri) for r in (await client.list_resources()).resources}
    assert {f"rag://documents/{i}" for i in ids} <= listed
    from mcp import MCPError

    with pytest.raises(MCPError, match="no document with id"):
        await client.read_resource("rag://documents/no-such-document")
    assert (await client.call_tool("ask", {"question": QUESTION})).structured_content["answers"][0]["text"] == ANSWER


# ----------------------------------------------------------------------------- stdio

@needs_mcp
def test_stdio_rag_mcp(index_dir: Path) -> None:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(command=sys.executable, args=["-m", "rag.cli", "mcp", "--index", str(index_dir)],
                                   env=_env(), cwd=str(ROOT))

    async def main() -> None:
        with anyio.fail_after(120):
            # The initialize handshake, as desktop clients connect today (the HTTP tests use the
            # SDK's default, which discovers the newer protocol).
            async with Client(params, mode="legacy") as client:
                assert client.server_capabilities.tools is not None
                await check_tools(client)

    anyio.run(main)


# ----------------------------------------------------------------------------- streamable HTTP

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def rag_serve(index_dir: Path, tmp_path_factory):
    """``rag serve`` on 127.0.0.1 with write and read keys, keys needed for reads too; yields its URL."""
    if not HAVE_MCP:
        pytest.skip("the optional extra [mcp] is not installed")
    base = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = _env(RAG_API_KEYS=WRITE_KEY, RAG_READ_API_KEYS=READ_KEY, RAG_REQUIRE_AUTH_FOR_READS="true", XDG_RUNTIME_DIR=str(base))
    log = (base / "serve.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
                                "--index", str(index_dir), "--no-build"], env=env, cwd=ROOT, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"rag serve exited with {process.returncode}: {(base / 'serve.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("rag serve did not become ready")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _client(url: str, key: str | None, mode: str = "auto"):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Client(streamable_http_client(f"{url}/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=60)), mode=mode)


LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
MCP_ACCEPT = {"Accept": "application/json, text/event-stream"}


def test_http_serves_the_tools_with_a_key(rag_serve: str) -> None:
    async def main() -> None:
        with anyio.fail_after(60):
            async with _client(rag_serve, WRITE_KEY) as client:
                await check_tools(client)
            async with _client(rag_serve, WRITE_KEY, mode="legacy") as client:  # the initialize handshake
                result = await client.call_tool("ask", {"question": QUESTION})
                assert result.structured_content["answers"][0]["text"] == ANSWER

    anyio.run(main)


def test_http_refuses_a_request_without_a_key_like_the_api(rag_serve: str) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-key"}):
        mcp = httpx.post(f"{rag_serve}/mcp", json=LIST_TOOLS, headers={**MCP_ACCEPT, **headers})
        api = httpx.post(f"{rag_serve}/v1/ask", json={"question": QUESTION}, headers=headers)
        assert mcp.status_code == api.status_code == 401
        assert mcp.headers["www-authenticate"] == api.headers["www-authenticate"]
        assert "tools" not in mcp.text

    async def main() -> None:
        async with _client(rag_serve, None) as client:
            await client.list_tools()

    with pytest.raises(Exception):  # noqa: B017 - the SDK reports the 401 as an error group of its own
        anyio.run(main)


def test_http_serves_a_read_only_key(rag_serve: str) -> None:
    response = httpx.post(f"{rag_serve}/mcp", json=LIST_TOOLS, headers={**MCP_ACCEPT, "Authorization": f"Bearer {READ_KEY}"})
    assert response.status_code == 200, response.text


def test_http_refuses_another_sites_page(rag_serve: str) -> None:
    headers = {**MCP_ACCEPT, "Authorization": f"Bearer {WRITE_KEY}"}
    refused = httpx.post(f"{rag_serve}/mcp", json=LIST_TOOLS, headers={**headers, "Origin": "http://evil.example"})
    assert refused.status_code == 403 and "another site" in refused.json()["detail"]
    own = httpx.post(f"{rag_serve}/mcp", json=LIST_TOOLS, headers={**headers, "Origin": rag_serve})
    assert own.status_code == 200 and {t["name"] for t in own.json()["result"]["tools"]} == TOOLS


@needs_mcp
def test_http_tool_calls_spend_the_work_budget(fake_pipeline: Pipeline) -> None:
    """The API's work budget (RAG_WORK_BUDGET) covers /mcp: a question costs 1 + reader_top_k."""
    from mcp import Client

    from rag.api.app import create_app

    settings = fake_pipeline.settings.model_copy(update={"work_budget": f"{1 + fake_pipeline.settings.reader_top_k}/minute"})

    async def main(url: str) -> None:
        async with Client(f"{url}/mcp") as client:
            assert not (await client.call_tool("ask", {"question": QUESTION})).is_error
            over = await client.call_tool("ask", {"question": QUESTION})
            assert over.is_error and "work budget exceeded" in _text(over)

    with serve(create_app(settings, fake_pipeline, warm_up=False)) as url:
        anyio.run(main, url)


# ----------------------------------------------------------------------------- in process

@needs_mcp
def test_pipeline_calls_run_off_the_event_loop(fake_pipeline: Pipeline, monkeypatch) -> None:
    from mcp import Client

    from rag.mcp_server import build_server

    threads: list[threading.Thread] = []
    ask = fake_pipeline.ask

    def recorded(*args, **kwargs):
        threads.append(threading.current_thread())
        return ask(*args, **kwargs)

    monkeypatch.setattr(fake_pipeline, "ask", recorded)

    async def main() -> None:
        async with Client(build_server(fake_pipeline, warm_up=False)) as client:
            result = await client.call_tool("ask", {"question": QUESTION})
            assert result.structured_content["answers"][0]["text"] == ANSWER
        assert threads and threads[0] is not threading.current_thread()

    anyio.run(main)


@needs_mcp
def test_documents_with_unusual_ids_are_resources(fake_pipeline: Pipeline) -> None:
    from mcp import Client

    from rag.ingest import document_from_text
    from rag.mcp_server import build_server, document_uri

    document = document_from_text("Die Hauptstadt ist Bern.", "Notizen über Städte", {"title": "Notizen"})
    fake_pipeline.upsert_documents([document])
    uri = document_uri(document.document_id)
    assert "%C3%BC" in uri  # ü, percent-encoded in the URI

    async def main() -> None:
        async with Client(build_server(fake_pipeline, warm_up=False)) as client:
            assert uri in {str(r.uri) for r in (await client.list_resources()).resources}
            assert (await client.read_resource(uri)).contents[0].text == "Die Hauptstadt ist Bern."
            page = (await client.call_tool("get_document", {"document_id": document.document_id})).structured_content
            assert page["uri"] == uri and page["text"] == "Die Hauptstadt ist Bern."

    anyio.run(main)


# ----------------------------------------------------------------------------- without the extra

LEAN_CHILD = textwrap.dedent(
    """
    import importlib.machinery, json, sys

    class Uninstalled(importlib.machinery.PathFinder):
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.partition(".")[0] == "mcp":
                return None
            return importlib.machinery.PathFinder.find_spec(name, path, target)

    sys.meta_path[:] = [Uninstalled if f is importlib.machinery.PathFinder else f for f in sys.meta_path]

    from fastapi.testclient import TestClient
    from typer.testing import CliRunner
    import rag.cli
    from rag.api.app import create_app
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    settings = Settings(index_dir=sys.argv[1], embedding_model="hashing:256", reader="heuristic")
    with TestClient(create_app(settings, Pipeline(settings))) as client:
        status = client.get("/mcp").status_code
    run = CliRunner().invoke(rag.cli.app, ["mcp", "--index", sys.argv[1]])
    print(json.dumps({"status": status, "exit": run.exit_code, "output": run.output,
                      "loaded": sorted(n for n in sys.modules if n.partition(".")[0] == "mcp")}))
    """
)


def test_without_the_extra_the_service_runs_and_rag_mcp_says_what_to_install(index_dir: Path) -> None:
    done = subprocess.run([sys.executable, "-c", LEAN_CHILD, str(index_dir)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert result["status"] == 404  # no /mcp route, the rest of the service as usual
    assert result["exit"] == 2
    assert "rag mcp needs the optional extra [mcp]" in result["output"] and 'pip install -e ".[mcp]"' in result["output"]
