"""Chat clients as docs/chat-clients.md sets them up: llm, the OpenAI Node SDK, Open WebUI.

Each client has two kinds of test against a live server on loopback:

* replay (always runs): the exact HTTP requests the client sends, captured once against a logging
  server (llm 0.36 with openai-python 3.63; openai-node 6.49 on Node 20), are sent again and the
  responses are read the way that client reads them;
* live: the client itself, set up as the doc says (the doc's YAML entry, commands and script are
  read from docs/chat-clients.md). Skipped when the client is missing: ``llm`` (on PATH, or
  ``RAG_TEST_LLM=/path/to/llm``; ``pip install llm`` in a virtual environment of its own), and
  ``node`` with the ``openai`` package (``npm install`` in tests/node, or
  ``RAG_TEST_NODE_MODULES=/path/to/node_modules``).

Open WebUI is not run (a large install): its background task prompts, built like its templates
and filled in as it fills them, go through the API, and the sources it is sent are checked against
what its code does with them (a port of its stream handling and of Citations.svelte's grouping).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from support import ROOT, indexed_pipeline, serve
from rag.api.app import create_app
from rag.chat import markdown_safe
from rag.chat_clients import task_prompt

DOC = ROOT / "docs" / "chat-clients.md"
QUESTION = "Who was NATO's first Secretary General?"
FOLLOW_UP = "and where did it hold its 75th anniversary summit?"
REWRITTEN = "Where did NATO hold its 75th anniversary summit?"
DOC_BASE = "http://127.0.0.1:8000/v1"

# ----------------------------------------------------------------------------- captured requests
# Headers as captured (hop-by-hop ones, Host and Content-Length left to httpx).
LLM_HEADERS = {
    "authorization": "Bearer DUMMY_KEY", "accept": "application/json", "content-type": "application/json",
    "user-agent": "OpenAI/Python 3.63.0", "x-stainless-lang": "python", "x-stainless-package-version": "3.63.0",
    "x-stainless-os": "Linux", "x-stainless-arch": "x64", "x-stainless-runtime": "CPython",
    "x-stainless-runtime-version": "3.11.7", "x-stainless-async": "false", "x-stainless-retry-count": "0",
    "x-stainless-read-timeout": "600", "accept-encoding": "gzip, deflate",
}
NODE_HEADERS = {
    "accept": "application/json", "user-agent": "OpenAI/JS 6.49.0", "x-stainless-retry-count": "0",
    "x-stainless-lang": "js", "x-stainless-package-version": "6.49.0", "x-stainless-os": "Linux",
    "x-stainless-arch": "x64", "x-stainless-runtime": "node", "x-stainless-runtime-version": "v20.20.2",
    "authorization": "Bearer unused", "content-type": "application/json", "accept-language": "*",
    "sec-fetch-mode": "cors", "accept-encoding": "gzip, deflate",
}


def llm_request(messages: list[dict], stream: bool) -> dict:
    """The body llm sends: ``llm -m rag`` (stream), ``--no-stream``, and ``llm -c`` (the history)."""
    if stream:
        return {"model": "rag-default", "stream": True, "messages": messages, "stream_options": {"include_usage": True}}
    return {"model": "rag-default", "stream": False, "messages": messages}


def node_request(messages: list[dict], stream: bool) -> dict:
    """The body openai-node sends for ``create({model, messages[, stream: true]})``."""
    return {"model": "rag-default", "messages": messages, **({"stream": True} if stream else {})}


# ----------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    pipeline = indexed_pipeline(tmp_path_factory.mktemp("clients"))
    with serve(create_app(pipeline.settings, pipeline, warm_up=False)) as url:
        yield url


def post(base_url: str, body: dict, headers: dict | None = None) -> httpx.Response:
    headers = headers or {"content-type": "application/json"}
    return httpx.post(f"{base_url}/v1/chat/completions", content=json.dumps(body), headers=headers, timeout=30)


def sse_chunks(response: httpx.Response) -> list[dict]:
    """The JSON chunks of an SSE body, as the SDKs read them (``data:`` lines up to [DONE])."""
    chunks, done = [], False
    for line in response.text.splitlines():
        if not line.startswith("data:"):
            continue
        data = line.removeprefix("data:").strip()
        if data == "[DONE]":
            done = True
            break
        chunks.append(json.loads(data))
    assert done, "the stream ends with data: [DONE]"
    return chunks


def doc_block(heading: str, language: str, index: int = 0) -> str:
    """The ``index``-th fenced ``language`` block of the doc's section ``heading`` (a ## heading)."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else len(text)]
    return re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)[index]


# ----------------------------------------------------------------------------- llm: replay
def test_llm_requests_replayed(base_url):
    streamed = post(base_url, llm_request([{"role": "user", "content": QUESTION}], stream=True), LLM_HEADERS)
    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
    chunks = [ChatCompletionChunk.model_validate(c) for c in sse_chunks(streamed)]
    # what llm's Chat.execute reads: delta.content (and tool_calls) of choices[0], chunk.usage
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].delta)
    usage = [c.usage for c in chunks if c.usage]
    assert text.startswith("Lord Hastings Lionel Ismay [1]") and "Sources:\n[1] NATO at 75" in text
    assert len(usage) == 1 and usage[0].total_tokens > 0, "stream_options.include_usage gives one usage chunk"

    plain = post(base_url, llm_request([{"role": "user", "content": QUESTION}], stream=False), LLM_HEADERS)
    assert plain.status_code == 200
    completion = ChatCompletion.model_validate(plain.json())
    assert completion.choices[0].message.content == text
    logged = completion.model_dump()  # what `llm logs --json` shows as response_json with --no-stream
    assert logged["choices"][0]["message"]["annotations"][0]["url_citation"]["url"].endswith("/documents/nato-indo-pacific-pivot?p=1#p1")
    assert {"citations", "answers", "sources", "rewritten_question"} <= set(logged)
    page = httpx.get(logged["choices"][0]["message"]["annotations"][0]["url_citation"]["url"], timeout=30)
    assert page.status_code == 200 and 'id="p1"' in page.text, "the citation link opens the paragraph"

    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": text}, {"role": "user", "content": FOLLOW_UP}]
    follow_up = post(base_url, llm_request(history, stream=True), LLM_HEADERS)
    rewritten = {c.get("rewritten_question") for c in sse_chunks(follow_up)} - {None}
    assert rewritten == {REWRITTEN}


# ----------------------------------------------------------------------------- llm: live
LLM = os.environ.get("RAG_TEST_LLM") or shutil.which("llm")


@pytest.mark.skipif(not LLM, reason="llm is not installed: `pip install llm` (a venv of its own is fine) and put it on PATH or set RAG_TEST_LLM")
def test_llm_as_documented(base_url, tmp_path):
    entry = doc_block("llm, the command-line tool", "yaml")
    assert DOC_BASE in entry
    (tmp_path / "extra-openai-models.yaml").write_text(entry.replace(DOC_BASE, f"{base_url}/v1"))
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path)}
    commands = [shlex.split(line) for line in doc_block("llm, the command-line tool", "bash").splitlines() if line.strip()]
    assert [c[:3] for c in commands] == [["llm", "-m", "rag"], ["llm", "-c", FOLLOW_UP], ["llm", "-m", "rag"], ["llm", "logs", "-n"]]

    def llm(arguments: list[str]) -> str:
        done = subprocess.run([str(LLM), *arguments[1:]], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def last_logged() -> dict:
        return json.loads(llm(["llm", "logs", "-n", "1", "--json"]))[0]

    first = llm(commands[0])
    assert first.startswith("Lord Hastings Lionel Ismay [1]") and f"{base_url}/documents/nato-indo-pacific-pivot?p=1#p1" in first
    logged = last_logged()["response_json"]
    assert "citations" not in logged and "annotations" not in json.dumps(logged), "a streamed response is logged without them"
    follow_up = llm(commands[1])
    assert "Washington" in follow_up
    unstreamed = llm(commands[2])
    assert unstreamed == first
    logged = json.loads(llm(commands[3]))[0]["response_json"]
    assert logged["citations"][0]["document_id"] == "nato-indo-pacific-pivot"
    assert logged["choices"][0]["message"]["annotations"][0]["type"] == "url_citation"
    assert logged["sources"][0]["document"] == [markdown_safe(logged["citations"][0]["paragraph_text"])]


# ----------------------------------------------------------------------------- Node SDK: replay
def test_node_sdk_requests_replayed(base_url):
    plain = post(base_url, node_request([{"role": "user", "content": QUESTION}], stream=False), NODE_HEADERS)
    assert plain.status_code == 200
    reply = plain.json()
    message = reply["choices"][0]["message"]
    assert [message["content"][a["url_citation"]["start_index"] : a["url_citation"]["end_index"]] for a in message["annotations"]] == ["[1]", "[1]"]
    assert reply["citations"][0]["paragraph_text"].startswith("In the words of NATO’s first Secretary General")

    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": message["content"]}, {"role": "user", "content": FOLLOW_UP}]
    streamed = post(base_url, node_request(history, stream=True), NODE_HEADERS)
    assert streamed.status_code == 200
    text, cited, markers = "", None, []
    for chunk in sse_chunks(streamed):  # the Node SDK yields JSON.parse(data) of each event, and throws on data.error
        assert "error" not in chunk
        ChatCompletionChunk.model_validate(chunk)
        delta = (chunk["choices"] or [{}])[0].get("delta") or {}
        text += delta.get("content") or ""
        if chunk.get("citations"):
            cited = chunk["rewritten_question"]
            markers = [text[a["url_citation"]["start_index"] : a["url_citation"]["end_index"]] for a in delta["annotations"]]
    assert cited == REWRITTEN and "Washington" in text
    assert markers and set(markers) <= {"[1]", "[2]", "[3]"}


# ----------------------------------------------------------------------------- Node SDK: live
NODE = shutil.which("node")
NODE_MODULES = Path(os.environ.get("RAG_TEST_NODE_MODULES") or ROOT / "tests" / "node" / "node_modules")
needs_node_sdk = pytest.mark.skipif(
    not NODE or not (NODE_MODULES / "openai" / "package.json").exists(),
    reason="node or its openai package is missing: install Node.js, then `npm install` in tests/node (or set RAG_TEST_NODE_MODULES)",
)


def run_node(script: str, tmp_path: Path, *arguments: str) -> str:
    """``script`` run as an ES module next to a node_modules holding openai."""
    (tmp_path / "node_modules").symlink_to(NODE_MODULES.resolve(), target_is_directory=True)
    (tmp_path / "chat.mjs").write_text(script)
    done = subprocess.run([str(NODE), "chat.mjs", *arguments], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@needs_node_sdk
def test_node_sdk_script(base_url, tmp_path):
    out = json.loads(run_node((ROOT / "tests" / "node" / "chat.mjs").read_text(), tmp_path, f"{base_url}/v1").splitlines()[-1])
    assert out["content"].startswith("Lord Hastings Lionel Ismay [1]") and out["markers"] == ["[1]", "[1]"]
    assert out["urls"] == [f"{base_url}/documents/nato-indo-pacific-pivot?p=1#p1"] * 2
    assert out["source"]["document"] == markdown_safe(out["paragraph"])
    streamed = out["streamed"]
    assert streamed["pieces"] > 3 and streamed["finish"] == "stop" and "Washington" in streamed["text"]
    assert streamed["cited"]["asked_as"] == REWRITTEN
    assert streamed["markers"][:2] == ["[1]", "[1]"]
    assert streamed["events"][-1] == "chat:completion" and set(streamed["events"][:-1]) == {"source"}


@needs_node_sdk
def test_node_sdk_as_documented(base_url, tmp_path):
    script = doc_block("The OpenAI Node SDK", "js")
    assert DOC_BASE in script
    out = run_node(script.replace(DOC_BASE, f"{base_url}/v1"), tmp_path)
    assert out.startswith("Lord Hastings Lionel Ismay [1]")
    assert f"[1] NATO at 75: The Indo-Pacific Pivot and Cooperation with South Korea {base_url}/documents/nato-indo-pacific-pivot?p=1#p1" in out
    assert "In the words of NATO’s first Secretary General" in out
    assert f"asked as: {REWRITTEN}" in out and "cited: [" in out


# ----------------------------------------------------------------------------- Open WebUI: task prompts
# Built like Open WebUI's default task templates (config.py: ### Task / ### Guidelines / ### Output
# with the JSON it wants / ### Chat History with {{MESSAGES:END:n}} inside <chat_history>), each
# over 1000 characters as theirs are; Open WebUI fills the history with "ROLE: content" lines.
GUIDELINES = "\n".join(f"- Guideline {i}: keep the answer short, plain and in the chat's primary language; default to English if multilingual." for i in range(8))
TEMPLATES = {
    "title_generation": ("Generate a concise, 3-5 word title with an emoji summarizing the chat history.", 'JSON format: { "title": "your concise title here" }\n### Examples:\n- { "title": "📉 Stock Market Trends" }', 2),
    "tags_generation": ("Generate 1-3 broad tags categorizing the main themes of the chat history, along with 1-3 more specific subtopic tags.", 'JSON format: { "tags": ["tag1", "tag2", "tag3"] }', 6),
    "follow_up_generation": ("Suggest 3-5 relevant follow-up questions or prompts that the user might naturally ask next.", 'JSON format: { "follow_ups": ["Question 1?", "Question 2?", "Question 3?"] }', 6),
    "query_generation": ("Analyze the chat history to determine the necessity of generating search queries.", 'Strictly return in JSON format: \n{\n  "queries": ["query1", "query2"]\n}', 6),
}


def task_template(task: str) -> str:
    what, output, last = TEMPLATES[task]
    return f"### Task:\n{what}\n### Guidelines:\n{GUIDELINES}\n### Output:\n{output}\n### Chat History:\n<chat_history>\n{{{{MESSAGES:END:{last}}}}}\n</chat_history>"


def open_webui_prompt(task: str, messages: list[dict]) -> str:
    """The template with {{MESSAGES:END:n}} replaced as Open WebUI does (the last n messages)."""
    last = TEMPLATES[task][2]
    history = "\n".join(f"{m['role'].upper()}: {m['content']}" for m in messages[-last:])
    return task_template(task).replace(f"{{{{MESSAGES:END:{last}}}}}", history)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_open_webui_task_prompts_get_answers(base_url, stream):
    answer = post(base_url, {"model": "rag-default", "messages": [{"role": "user", "content": QUESTION}]}).json()
    conversation = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": answer["choices"][0]["message"]["content"]}]
    expected = {
        "title_generation": {"title": QUESTION},
        "tags_generation": {"tags": []},
        "follow_up_generation": {"follow_ups": []},
        "query_generation": {"queries": []},
    }
    for task, wanted in expected.items():
        prompt = open_webui_prompt(task, conversation)
        assert len(prompt) > 1000, "as long as Open WebUI's: over the question limit"
        # Open WebUI's task request: one user message, stream false, a token cap (its metadata is
        # removed before the request is sent to an OpenAI connection)
        body = {"model": "rag-default", "messages": [{"role": "user", "content": prompt}], "stream": stream, "max_completion_tokens": 1000}
        response = post(base_url, body)
        assert response.status_code == 200, response.text
        assert response.headers["x-rag-task"] == task
        if stream:
            chunks = sse_chunks(response)
            content = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
            assert chunks[0]["task"]["task"] == task and chunks[-1]["choices"][0]["finish_reason"] == "stop"
        else:
            reply = response.json()
            ChatCompletion.model_validate(reply)
            content = reply["choices"][0]["message"]["content"]
            assert reply["task"]["key"] == next(iter(wanted)) and reply["citations"] == [] and reply["sources"] == []
        # Open WebUI cuts the content from the first "{" to the last "}" and json.loads it
        assert json.loads(content[content.find("{") : content.rfind("}") + 1]) == wanted


def test_task_prompts_recognised_and_not_otherwise():
    conversation = [{"role": "user", "content": "What is " + "very " * 30 + "long?"}]
    title = task_prompt(open_webui_prompt("title_generation", conversation))
    assert title is not None and len(json.loads(title.content)["title"]) <= 61
    assert json.loads(title.content)["title"].endswith("…")
    unknown = task_prompt("### Task:\nSay something.\n<chat_history>\nUSER: hi\n</chat_history>")
    assert unknown is not None and unknown.task == "unknown" and unknown.content == ""
    for question in (QUESTION, "### Task: where is it?", "What does <chat_history> mean?\n### Task:"):
        assert task_prompt(question) is None


def test_long_question_is_still_refused(base_url):
    """Only task prompts are answered: a long question is still a 400."""
    response = post(base_url, {"model": "rag-default", "messages": [{"role": "user", "content": "Why " * 400 + "?"}]})
    assert response.status_code == 400 and "longer than 1000 characters" in response.json()["error"]["message"]


# ----------------------------------------------------------------------------- Open WebUI: sources
def open_webui_sources_of_stream(chunks: list[dict], replace: bool) -> list[dict]:
    """message.sources after Open WebUI handled ``chunks``: its middleware emits a chunk's
    ``event`` and then a "source" per url_citation annotation (title as the text, the URL as
    metadata.source); the page appends "source" events, and a chat:completion event's sources
    replace the list (``replace``) or only fill an empty one (older pages)."""
    sources: list[dict] | None = None
    for chunk in chunks:
        events = [chunk["event"]] if "event" in chunk else []
        delta = (chunk["choices"] or [{}])[0].get("delta") or {}
        for a in delta.get("annotations") or []:
            c = a["url_citation"]
            events.append({"type": "source", "data": {"source": {"name": c["title"], "url": c["url"]}, "document": [c["title"]],
                                                      "metadata": [{"source": c["url"], "name": c["title"]}]}})
        for event in events:
            if event["type"] == "source":
                sources = [*(sources or []), event["data"]]
            elif event["type"] == "chat:completion" and event["data"].get("sources") and (replace or not sources):
                sources = event["data"]["sources"]
    return sources or []


def open_webui_citations(sources: list[dict]) -> list[dict]:
    """Citations.svelte: documents grouped by metadata.source (else source.id); chip [n] opens group n."""
    groups: list[dict] = []
    for source in sources:
        for i, document in enumerate(source.get("document", [])):
            metadata = (source.get("metadata") or [{}])[i]
            key = metadata.get("source") or source.get("source", {}).get("id") or "N/A"
            named = {**source.get("source", {}), **({"name": metadata["name"]} if metadata.get("name") else {})}
            if str(metadata.get("source_url", "")).startswith("http"):
                named["url"] = metadata["source_url"]
            elif key.startswith("http"):
                named = {**named, "name": key, "url": key}
            group = next((g for g in groups if g["id"] == key), None)
            if group:
                group["document"].append(document)
            else:
                groups.append({"id": key, "source": named, "document": [document]})
    return groups


def check_chips(groups: list[dict], reply: dict) -> None:
    """Chip [n] opens the cited paragraph of marker n, once, named by its title and paragraph."""
    for n, (citation, answer) in enumerate(zip(reply["citations"], reply["answers"], strict=True), start=1):
        group = groups[n - 1]
        assert group["document"] == [markdown_safe(citation["paragraph_text"])]
        assert group["source"]["name"] == f"{citation['title']}, paragraph {citation['paragraph_index']}"
        assert group["source"]["url"] == answer["url"]


def test_open_webui_sources_plain(base_url):
    question = "Where did NATO hold its 75th anniversary summit?"
    reply = post(base_url, {"model": "rag-default", "messages": [{"role": "user", "content": question}]}).json()
    ChatCompletion.model_validate(reply)
    assert len(reply["citations"]) >= 2, "several markers, each its own source"
    assert len(reply["sources"]) == len(reply["citations"])
    for source in reply["sources"]:
        assert set(source) == {"source", "document", "metadata"} and len(source["document"]) == len(source["metadata"]) == 1
        assert set(source["source"]) == {"id", "name", "url"} and source["metadata"][0]["source"] == source["source"]["id"]
    # a non-streamed reply is handed to the page whole; its top-level sources become the message's
    check_chips(open_webui_citations(reply["sources"]), reply)


@pytest.mark.parametrize("replace", [True, False], ids=["replacing page", "older page"])
def test_open_webui_sources_streamed(base_url, replace):
    messages = [{"role": "user", "content": "Where did NATO hold its 75th anniversary summit?"}]
    reply = post(base_url, {"model": "rag-default", "messages": messages}).json()
    chunks = sse_chunks(post(base_url, {"model": "rag-default", "messages": messages, "stream": True}))
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    extensions = next(c for c in chunks if c.get("citations"))
    assert extensions["sources"] == reply["sources"]
    groups = open_webui_citations(open_webui_sources_of_stream(chunks, replace))
    check_chips(groups, reply)
    urls = {a["url"] for a in reply["answers"]}
    if replace:
        assert len(groups) == len(reply["citations"]), "only the service's sources are left"
    else:
        assert {g["id"] for g in groups[len(reply["citations"]) :]} == urls, "the annotations' own sources come after"
