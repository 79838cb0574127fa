"""Issue 11, chat: linear follow-up rewriting, bounded histories, HTML-safe content, links from
the socket address (not the Host header), unpaired surrogates answered 400."""
from __future__ import annotations

import dataclasses
import time
from functools import partial

from rag.api import routes_chat
from rag.chat import ChatTurn, build_chat_answer, rewrite_question
from test_security import make_client

QUESTION = "Who was NATO's first Secretary General?"


def _chat(client, *contents, **extra):
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": c} for i, c in enumerate(contents)]
    return client.post("/v1/chat/completions", json={"model": "rag-default", "messages": messages, **extra})


def _fastest(run, repeat: int = 5) -> float:
    """The least of ``repeat`` timings of ``run()``: the one least disturbed by other processes."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def test_follow_up_rewriting_is_linear_on_long_whitespace_runs():
    # issue 11: 7.1 s for 40,000 spaces (quadratic backtracking), blocking the server.  Ten
    # times the spaces must cost about ten times as much (linear; measured 4-16x), not a hundred (quadratic):
    # a ratio of two timings taken together, not a wall-clock bound a loaded machine breaks.
    def history(spaces: int) -> list[ChatTurn]:
        return [ChatTurn("user", "what is x" + " " * spaces + "y"), ChatTurn("assistant", "ok" + " " * spaces), ChatTurn("user", "and it?")]

    def person(spaces: int) -> list[ChatTurn]:
        # the person rule reads the previous reply's first line up to its marker: also linear
        return [ChatTurn("user", "Who leads it?"), ChatTurn("assistant", "Jens" + " " * spaces + "x"), ChatTurn("user", "When was he born?")]

    for make in (history, person):
        small, large = make(40_000), make(400_000)
        ratio = _fastest(partial(rewrite_question, large)) / _fastest(partial(rewrite_question, small))
        assert ratio < 40, f"{make.__name__}: 10x the text took {ratio:.0f}x the time"
    rewrite = rewrite_question(history(400_000))
    assert rewrite.rule == "pronoun" and rewrite.subject.startswith("x") and rewrite.subject.endswith("y")


def test_copula_subject_keeps_its_meaning():
    turns = [ChatTurn("user", "What is hybrid warfare?!  "), ChatTurn("assistant", "x"), ChatTurn("user", "and why does it matter?")]
    assert rewrite_question(turns).question == "Why does hybrid warfare matter?"
    # a subject that runs past a line break is not taken (as before: "." does not match "\n")
    turns = [ChatTurn("user", "what is this\nand that"), ChatTurn("assistant", "x"), ChatTurn("user", "and why does it matter?")]
    assert rewrite_question(turns).rule == "no subject"


def test_chat_history_is_bounded(fake_pipeline):
    with make_client(fake_pipeline, max_chat_messages=8, max_chat_chars=2000) as client:
        assert _chat(client, *([QUESTION, "x"] * 3), QUESTION).status_code == 200  # 7 messages
        r = _chat(client, *([QUESTION, "x"] * 4), QUESTION)  # 9 messages
        assert r.status_code == 413 and r.json()["error"]["code"] == "context_length_exceeded"
        assert "RAG_MAX_CHAT_MESSAGES" in r.json()["error"]["message"]
        r = _chat(client, "y" * 1500, "x", "x" * 600)
        assert r.status_code == 413 and "RAG_MAX_CHAT_CHARS" in r.json()["error"]["message"]
        # a body far larger than any history within the limits is refused before it is parsed
        r = _chat(client, "y" * 200_000)
        assert r.status_code == 413 and "bytes" in r.json()["error"]["message"]


def test_issue_history_is_refused_quickly(fake_pipeline, monkeypatch):
    """issue 11: 520,001 messages (23.9 MB) took 9.5 s to parse and rewrite; default limits answer
    413 from the body's size, before any parsing (checked by the work done, not by the clock)."""
    parsed = []
    real = routes_chat._validated
    monkeypatch.setattr(routes_chat, "_validated", lambda *args: parsed.append(1) or real(*args))
    with make_client(fake_pipeline, max_body_bytes=30 * 1024 * 1024) as client:
        messages = [{"role": "user", "content": "hi"}] * 520_001
        r = client.post("/v1/chat/completions", json={"model": "rag-default", "messages": messages})
        assert r.status_code == 413 and parsed == []
        assert _chat(client, "Who was NATO's first Secretary General?").status_code == 200 and parsed == [1]


def test_unpaired_surrogates_in_chat_are_400(fake_pipeline):
    with make_client(fake_pipeline) as client:
        for body in (
            '{"model":"rag-default","messages":[{"role":"user","content":"who \\ud800"}]}',
            '{"model":"rag-default","messages":[{"role":"user","content":[{"type":"text","text":"\\udfff x"}]}]}',
            '{"model":"rag-default","messages":[{"role":"user","content":"who \\ud800"}],"stream":true}',
        ):
            r = client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
            assert r.status_code == 400, r.text
            assert "unpaired surrogate" in r.json()["error"]["message"]
            assert r.json()["error"]["param"].startswith("messages.0.content")


def test_chat_content_never_carries_document_markup(fake_pipeline):
    from rag.chat import markdown_safe

    rewrite = rewrite_question([ChatTurn("user", QUESTION)])
    result = fake_pipeline.ask(QUESTION)
    answer = result.answers[0]
    hostile = "Ismay <img src=x onerror=alert(1)> ![t](http://evil.example/p.png) [go](javascript:alert(1)) &amp;"
    citation = dataclasses.replace(answer.citation, title="<script>alert(1)</script>")
    result = dataclasses.replace(result, answers=[dataclasses.replace(answer, text="<b>Ismay</b>", context=hostile, citation=citation)])
    chat = build_chat_answer(result, rewrite, lambda c: f"/documents/{c.document_id}#p{c.paragraph_index}")
    for markup in ("<img", "<b>", "<script", "](", "!["):
        assert markup not in chat.content
    assert "&lt;img src=x onerror=alert(1)&gt;" in chat.content and "&amp;amp;" in chat.content
    assert chat.answers[0]["text"] == "<b>Ismay</b>"  # the structured fields keep the exact text
    for annotation in chat.annotations:
        assert chat.content[annotation.start_index : annotation.end_index] == "[1]"
    # a follow-up reads our escaped answer back as the person it names
    follow = rewrite_question([ChatTurn("user", "Who is the boss?"), ChatTurn("assistant", "AT&amp;T Boss [1]"), ChatTurn("user", "When was he born?")])
    assert follow.question == "When was AT&T Boss born?"
    assert markdown_safe("a<b>[c]&") == "a&lt;b&gt;&#91;c&#93;&amp;"


def test_citation_links_ignore_the_host_header(fake_pipeline):
    with make_client(fake_pipeline) as client:
        r = client.post(
            "/v1/chat/completions",
            json={"model": "rag-default", "messages": [{"role": "user", "content": QUESTION}]},
            headers={"Host": "evil.example"},
        )
        assert r.status_code == 200
        message = r.json()["choices"][0]["message"]
        urls = [a["url_citation"]["url"] for a in message["annotations"]]
        assert urls and all(u.startswith("http://127.0.0.1:8000/documents/") for u in urls)
        assert "evil.example" not in message["content"]
