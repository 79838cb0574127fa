"""Chat: follow-up rewriting, cited chat content, and the OpenAI-compatible API over the fake pipeline."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from rag.api.app import create_app
from rag.abstention import DETAILS, NO_ANSWER_MESSAGE, Cause
from rag.chat import ChatTurn, build_chat_answer, named_spans, rewrite_question
from rag.pipeline import Pipeline
from rag.api.schemas import ask_response

QUESTION = "Who was NATO's first Secretary General?"
REPLY = "Lord Hastings Lionel Ismay [1]\n\n> In the words of NATO’s first Secretary General, ... [1]"
WEB = Path(__file__).resolve().parent.parent / "rag" / "web"


def _turns(*contents: str) -> list[ChatTurn]:
    return [ChatTurn("user" if i % 2 == 0 else "assistant", c) for i, c in enumerate(contents)]


# ----------------------------------------------------------------------------- rewriting
@pytest.mark.parametrize(
    ("history", "expected", "rule"),
    [
        ((QUESTION,), QUESTION, "first question"),
        ((QUESTION, REPLY, "and when was it founded?"), "When was NATO founded?", "pronoun"),
        ((QUESTION, REPLY, "and where is it based?"), "Where is NATO based?", "pronoun"),
        ((QUESTION, REPLY, "and its headquarters?"), "NATO's headquarters?", "pronoun"),
        ((QUESTION, REPLY, "where did it hold its 75th summit?"), "Where did NATO hold its 75th summit?", "pronoun"),
        ((QUESTION, REPLY, "What did he say about the Soviet Union?"), "What did Lord Hastings Lionel Ismay say about the Soviet Union?", "pronoun"),
        ((QUESTION, "something else", "When was he born?"), "When was NATO's first Secretary General born?", "pronoun"),
        ((QUESTION, REPLY, "and the headquarters?"), "The headquarters of NATO?", "ellipsis"),
        ((QUESTION, REPLY, "when?"), "When (NATO)?", "ellipsis"),
        ((QUESTION, REPLY, "What is hybrid warfare?"), "What is hybrid warfare?", "self-contained"),
        ((QUESTION, REPLY, "What about South Korea?"), "What about South Korea?", "self-contained"),
        ((QUESTION, REPLY, "What did Yoon say about his country?"), "What did Yoon say about his country?", "self-contained"),
        (("What is hybrid warfare?", "x", "and why does it matter?"), "Why does hybrid warfare matter?", "pronoun"),
        (("why?", "x", "and how does it work?"), "and how does it work?", "no subject"),
        ((QUESTION, REPLY, "??"), "??", "self-contained"),
        ((QUESTION, REPLY, "and 2024?"), "and 2024?", "self-contained"),
        # chains: the subject comes from the previous question as rewritten
        ((QUESTION, REPLY, "When was it founded?", "x", "and where is it based?"), "Where is NATO based?", "pronoun"),
    ],
)
def test_rewrite(history, expected, rule):
    rewrite = rewrite_question(_turns(*history))
    assert rewrite.question == expected
    assert rewrite.rule == rule
    assert rewrite.changed == (expected != history[-1])


def test_rewrite_ignores_system_messages_and_needs_a_user_message():
    turns = [ChatTurn("system", "You are helpful. It is Tuesday."), *_turns(QUESTION, REPLY, "where is it based?")]
    assert rewrite_question(turns).question == "Where is NATO based?"
    with pytest.raises(ValueError):
        rewrite_question([ChatTurn("system", "hi")])


def test_named_spans():
    assert named_spans(QUESTION) == ["NATO", "Secretary General"]
    assert named_spans("What did the Republic of Korea and Washington D.C. sign in 2024?") == ["Republic of Korea", "Washington D.C.", "2024"]
    assert named_spans("What did I ask about the summit?") == []


# ----------------------------------------------------------------------------- content
def _url(citation) -> str:
    return f"/documents/{citation.document_id}#p{citation.paragraph_index}"


def test_chat_answer_markers_annotations_and_quote_offsets(fake_pipeline: Pipeline):
    rewrite = rewrite_question(_turns("Who is the South Korean President?"))
    result = fake_pipeline.ask(rewrite.question)
    assert len(result.answers) >= 2  # exercises "Other possible answers"
    chat = build_chat_answer(result, rewrite, _url, {"nato-indo-pacific-pivot": "https://example.org/a"})
    assert chat.content.startswith(result.answers[0].text + " [1]\n\n> ")
    assert "Other possible answers: " in chat.content and not chat.abstained
    assert len(chat.annotations) == len(result.answers) + 1  # [1] twice: after the answer and after its quote
    for a in chat.annotations:
        n = int(chat.content[a.start_index : a.end_index].strip("[]"))
        assert chat.content[a.start_index : a.end_index] == f"[{n}]"
        citation = result.answers[n - 1].citation
        assert a.url == _url(citation) and a.title == citation.title
        assert a.to_dict()["type"] == "url_citation" and set(a.to_dict()["url_citation"]) == {"start_index", "end_index", "url", "title"}
    assert chat.citations == [json.loads(json.dumps(a["citation"])) for a in ask_response(result)["answers"]]
    for entry, citation in zip(chat.answers, chat.citations, strict=True):
        assert citation["paragraph_text"][entry["context_start"] : entry["context_end"]] == entry["context"]
        assert entry["context_start"] <= citation["answer_start"] < citation["answer_end"] <= entry["context_end"]
    assert chat.answers[0]["source_url"] == "https://example.org/a"
    assert f"[1] {result.answers[0].citation.title}, paragraph {result.answers[0].citation.paragraph_index}: <" in chat.content


def test_chat_answer_abstention(fake_pipeline: Pipeline):
    rewrite = rewrite_question(_turns("What is the capital of Australia?"))
    chat = build_chat_answer(fake_pipeline.ask(rewrite.question), rewrite, _url)
    assert chat.abstained and chat.content.startswith(NO_ANSWER_MESSAGE)
    assert chat.annotations == [] and chat.citations == [] and chat.no_answer["reason"]
    # the detail line comes from the structured cause, not from splitting the reason sentence
    assert chat.no_answer["cause"] in ("no_candidate", "below_threshold")
    assert chat.content.endswith("\nDetails: " + DETAILS[Cause(chat.no_answer["cause"])])
    assert "What is the capital of Australia?" in chat.content


# ----------------------------------------------------------------------------- API
@pytest.fixture
def client(fake_pipeline) -> TestClient:
    # A loopback server address: keyless writes are local-only (rag/api/security.py).
    with TestClient(create_app(fake_pipeline.settings, fake_pipeline, warm_up=False), raise_server_exceptions=False, base_url="http://127.0.0.1") as c:
        yield c


def _chat(client, *contents, **extra):
    return client.post("/v1/chat/completions", json={"model": "rag-default", "messages": [{"role": "user" if i % 2 == 0 else "assistant", "content": c} for i, c in enumerate(contents)], **extra})


def _events(text: str) -> list[str]:
    return [line[len("data:") :].strip() for line in text.splitlines() if line.startswith("data:")]


def test_models(client):
    body = client.get("/v1/models").json()
    assert body["object"] == "list" and [m["id"] for m in body["data"]] == ["rag-default"]
    assert client.get("/v1/models/rag-default").json()["object"] == "model"
    missing = client.get("/v1/models/gpt-4")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    assert "available: rag-default (also accepted: rag)" in missing.json()["error"]["message"]


def test_the_names_a_user_tries_mean_the_listed_model(client):
    """"rag" and the listed id in any case answer as the listed id (issue 21: "rag" was a 404)."""
    for name in ("rag", "RAG", "rag-default", "Rag-Default"):
        r = client.post("/v1/chat/completions", json={"model": name, "messages": [{"role": "user", "content": QUESTION}]})
        assert r.status_code == 200 and r.json()["model"] == "rag-default", name
        assert client.get(f"/v1/models/{name}").json()["id"] == "rag-default"
    r = client.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": [{"role": "user", "content": QUESTION}]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_completion_shape_and_citations_match_ask(client):
    r = _chat(client, QUESTION)
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and body["model"] == "rag-default"
    choice = body["choices"][0]
    message = choice["message"]
    assert choice["finish_reason"] == "stop" and message["role"] == "assistant"
    assert message["content"].startswith("Lord Hastings Lionel Ismay [1]")
    for annotation in message["annotations"]:
        cite = annotation["url_citation"]
        assert message["content"][cite["start_index"] : cite["end_index"]] == "[1]"
        assert cite["url"] == "http://127.0.0.1/documents/nato-indo-pacific-pivot?p=1#p1"
    ask = client.post("/v1/ask", json={"question": QUESTION}).json()
    assert body["citations"] == [a["citation"] for a in ask["answers"]]
    assert body["rewritten_question"] == QUESTION and body["no_answer"] is None
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # the citation link resolves to the paragraph
    page = client.get("/documents/nato-indo-pacific-pivot")
    assert page.status_code == 200 and 'id="p1"' in page.text


def test_streaming_matches_plain_and_ends_with_done(client):
    plain = _chat(client, QUESTION).json()
    r = _chat(client, QUESTION, stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _events(r.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert content == plain["choices"][0]["message"]["content"]
    cited = [c for c in chunks if c.get("citations")]
    assert len(cited) == 1 and cited[0]["citations"] == plain["citations"]
    assert cited[0]["choices"][0]["delta"]["annotations"] == plain["choices"][0]["message"]["annotations"]
    assert cited[0]["rewritten_question"] == QUESTION
    finish = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert chunks.index(cited[0]) < chunks.index(finish[0])
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == plain["usage"]


def test_follow_up_is_rewritten_and_visible(client):
    first = _chat(client, QUESTION).json()["choices"][0]["message"]["content"]
    body = _chat(client, QUESTION, first, "and where did it hold its 75th anniversary summit?").json()
    assert body["rewritten_question"] == "Where did NATO hold its 75th anniversary summit?"
    assert body["rewrite"]["rule"] == "pronoun" and body["rewrite"]["subject"] == "NATO"
    assert "Washington" in body["choices"][0]["message"]["content"]


def test_content_parts_and_system_messages_are_accepted(client):
    messages = [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": [{"type": "text", "text": QUESTION}, {"type": "image_url", "image_url": {"url": "data:,"}}]},
    ]
    r = client.post("/v1/chat/completions", json={"model": "rag-default", "messages": messages, "temperature": 0.2, "max_tokens": 50, "user": "u1"})
    assert r.status_code == 200 and "Ismay" in r.json()["choices"][0]["message"]["content"]


def test_abstention_says_so(client):
    body = _chat(client, "What is the capital of Australia?").json()
    message = body["choices"][0]["message"]
    assert message["content"].startswith(body["no_answer"]["message"] + "\n") and body["no_answer"]["message"] == NO_ANSWER_MESSAGE
    assert message["annotations"] == [] and body["citations"] == [] and body["no_answer"]["reason"] and body["no_answer"]["cause"]


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ("{not json", 400),
        ("[]", 400),
        ('{"messages": [{"role": "user", "content": "hi"}]}', 400),
        ('{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}', 404),
        ('{"model": "rag-default", "messages": []}', 400),
        ('{"model": "rag-default", "messages": "hi"}', 400),
        ('{"model": "rag-default", "messages": [{"role": "robot", "content": "hi"}]}', 400),
        ('{"model": "rag-default", "messages": [{"role": "system", "content": "hi"}]}', 400),
        ('{"model": "rag-default", "messages": [{"role": "user", "content": "   "}]}', 400),
        ('{"model": "rag-default", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}', 400),
        ('{"model": "rag-default", "messages": [{"role": "user", "content": 42}]}', 400),
        ('{"model": "rag-default", "messages": [{"role": "user", "content": "hi"}], "n": 3}', 400),
        ('{"model": "rag-default", "messages": [{"role": "user", "content": "' + "x" * 1200 + '"}]}', 400),
    ],
)
def test_bad_requests_are_4xx_in_openai_format(client, raw, status):
    r = client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == status
    error = r.json()["error"]
    assert error["message"] and error["type"]


def test_not_ready_is_503(tmp_path):
    from rag.settings import Settings

    empty = Pipeline(Settings(index_dir=tmp_path / "none", embedding_model="hashing:64", reader="heuristic"))
    with TestClient(create_app(empty.settings, empty)) as c:
        r = _chat(c, QUESTION)
        assert r.status_code == 503 and r.json()["error"]["type"] == "service_unavailable"


# ----------------------------------------------------------------------------- web page
def test_page_and_static_files_are_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<label for="question">' in page.text
    assert client.get("/static/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    assert client.get("/static/index.html").status_code == 404
    assert client.get("/static/..%2Fchat.py").status_code == 404
    for name in ("index.html", "app.js", "style.css"):
        text = (WEB / name).read_text()
        assert not re.search(r"https?://", text), f"{name} must not load anything from another origin"
    script = (WEB / "app.js").read_text()
    assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", script)


def test_document_view_escapes_text(client):
    text = 'First <script>alert("x")</script> paragraph.\nSecond paragraph about <b>bold</b> claims.'
    r = client.post("/v1/documents", json={"text": text, "document_id": "xss", "title": "<img src=x onerror=alert(1)>"})
    assert r.status_code == 201
    page = client.get("/documents/xss")
    assert page.status_code == 200
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text
    assert "<img src=x" not in page.text and 'id="p0"' in page.text
    assert client.get("/documents/no-such-doc").status_code == 404


def test_document_view_names_a_heading_once(client):
    """A heading leads the paragraph under it (its text is read and retrieved); the view shows it
    as the section's heading, not again at the start of the paragraph, unless a quote is in it."""
    page = client.get("/documents/nato-indo-pacific-pivot").text
    heading = "NATO’s Strategic Pivot to the Indo-Pacific"
    assert page.count(f'<h2 class="section">{heading}</h2>') == 1
    item = re.search(r'<li id="p3"[^>]*>.*?</li>', page, re.S).group(0)
    assert '<span class="text">The 75th anniversary summit' in item and heading not in item
    # a quote that reaches into the heading: the paragraph is shown whole, the marks in place
    item = re.search(r'<li id="p3"[^>]*>.*?</li>', client.get("/documents/nato-indo-pacific-pivot?p=3&quote=0-10&answer=0-4").text, re.S).group(0)
    assert '<mark id="quote"><strong>NATO</strong>’s Str</mark>' in item
    # a quote after it: marks shifted with the text
    text = next(p for p in client.get("/v1/documents/nato-indo-pacific-pivot").json()["paragraphs"] if p["paragraph_index"] == 3)["text"]
    start = text.index("The 75th")
    item = re.search(r'<li id="p3"[^>]*>.*?</li>', client.get(f"/documents/nato-indo-pacific-pivot?p=3&quote={start}-{start + 8}").text, re.S).group(0)
    assert '<span class="text"><mark id="quote">The 75th</mark> anniversary' in item


def test_public_url_sets_citation_links(client, fake_pipeline, monkeypatch):
    monkeypatch.setattr(fake_pipeline.settings, "public_url", "https://qa.example.org/")
    body = _chat(client, QUESTION).json()
    assert body["choices"][0]["message"]["annotations"][0]["url_citation"]["url"] == "https://qa.example.org/documents/nato-indo-pacific-pivot?p=1#p1"
    assert "<https://qa.example.org/documents/nato-indo-pacific-pivot?p=1#p1>" in body["choices"][0]["message"]["content"]
