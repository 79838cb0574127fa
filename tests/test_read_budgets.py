"""Issue 20 items 5 and 10: document reads come in pages charged to the work budget, the
examples are computed once per index version, and chat bodies are bounded in content parts,
parsed off the event loop and charged by size."""
from __future__ import annotations

import inspect
import json

from rag.api import document_pages, routes_chat, routes_documents, routes_web
from test_security import make_client

LONG_ID = "long-report"


def _long_text(paragraphs: int) -> str:
    # long enough that each stays its own paragraph (short blocks are grouped)
    sentence = "Paragraph {i} says that beacon number {i} at the harbour is blue and is lit at dusk for the ships. "
    return "\n\n".join((sentence * 4).format(i=i).strip() for i in range(paragraphs))


def _upload(client, paragraphs: int = 450) -> str:
    text = _long_text(paragraphs)
    r = client.post("/v1/documents", json={"document_id": LONG_ID, "title": "Long report", "text": text})
    assert r.status_code == 201, r.text
    return text


def test_document_reads_come_in_pages_that_tile_the_text(fake_pipeline):
    with make_client(fake_pipeline) as client:
        text = _upload(client)
        first = client.get(f"/v1/documents/{LONG_ID}").json()
        assert first["paragraph_count"] == 450 and first["start"] == 0
        assert len(first["paragraphs"]) == document_pages.DEFAULT_PARAGRAPHS and first["next_start"] == 200
        assert first["characters"] == len(text) and first["text_start"] == 0
        pieces, indexes, url = [], [], f"/v1/documents/{LONG_ID}"
        while url:
            page = client.get(url).json()
            pieces.append(page["text"])
            indexes += [p["paragraph_index"] for p in page["paragraphs"]]
            for p in page["paragraphs"]:  # offsets stay the whole document's
                assert text[p["doc_start"] : p["doc_end"]] == p["text"]
            assert all(b["end"] > page["text_start"] and b["start"] < page["text_end"] for b in page["blocks"])
            url = page["next"]
        assert "".join(pieces) == text and indexes == list(range(450))
        assert client.get(f"/v1/documents/{LONG_ID}", params={"limit": document_pages.MAX_PARAGRAPHS + 1}).status_code == 422
        small = client.get(f"/v1/documents/{LONG_ID}", params={"start": 440, "limit": 5}).json()
        assert [p["paragraph_index"] for p in small["paragraphs"]] == [440, 441, 442, 443, 444] and small["next_start"] == 445


def test_a_page_stops_at_its_character_budget(fake_pipeline, monkeypatch):
    monkeypatch.setattr(document_pages, "PAGE_CHARS", 4000)
    with make_client(fake_pipeline) as client:
        _upload(client, 100)
        page = client.get(f"/v1/documents/{LONG_ID}", params={"limit": 100}).json()
        assert 5 <= len(page["paragraphs"]) < 100 and page["text_end"] - page["text_start"] <= 4400


def test_reads_are_rendered_in_worker_threads():
    # FastAPI runs plain functions in its thread pool; both return rendered bytes.
    assert not inspect.iscoroutinefunction(routes_documents.get_document)
    assert not inspect.iscoroutinefunction(routes_web.document_page)
    assert not inspect.iscoroutinefunction(routes_web.examples)


def test_html_view_shows_the_page_of_the_cited_paragraph(fake_pipeline):
    with make_client(fake_pipeline) as client:
        _upload(client)
        default = client.get(f"/documents/{LONG_ID}").text
        assert 'id="p0"' in default and 'id="p199"' in default and 'id="p200"' not in default
        assert 'rel="next" href="/documents/long-report?start=200&amp;limit=200"' in default and 'rel="prev"' not in default
        cited = client.get(f"/documents/{LONG_ID}", params={"p": 300, "quote": "0-9", "answer": "0-9"}).text
        assert 'id="p300"' in cited and 'id="p199"' not in cited and 'rel="prev"' in cited and 'mark id="quote"' in cited
        assert "paragraphs 200–399 of 450" in cited
        assert client.get("/documents/nato-indo-pacific-pivot").text.count("doc-pages") == 0  # one page: no navigation


def test_document_reads_are_charged_by_size(fake_pipeline, monkeypatch):
    monkeypatch.setattr(document_pages, "CHARS_PER_UNIT", 5000)
    with make_client(fake_pipeline, work_budget="60/minute") as client:
        _upload(client)  # ~180,000 characters: ~180 units to load
        codes = [client.get(f"/v1/documents/{LONG_ID}").status_code for _ in range(4)]
        assert codes[0] == 200 and 429 in codes
        assert client.get(f"/documents/{LONG_ID}").status_code == 429  # the HTML view spends the same budget
        r = client.get(f"/v1/documents/{LONG_ID}")
        assert r.status_code == 429 and "RAG_WORK_BUDGET" in r.json()["detail"] and "retry-after" in r.headers


def test_document_view_and_examples_are_rate_limited(fake_pipeline):
    with make_client(fake_pipeline, rate_limit="3/minute") as client:
        codes = [client.get(path).status_code for path in ["/web/examples", "/documents/nato-indo-pacific-pivot"] * 3]
        assert codes.count(429) == 3 and client.get("/healthz").status_code == 200 and client.get("/").status_code == 200


def test_examples_are_computed_once_per_index_version(fake_pipeline, monkeypatch):
    calls = []
    real = routes_web.example_questions
    monkeypatch.setattr(routes_web, "example_questions", lambda *a, **k: calls.append(1) or real(*a, **k))
    with make_client(fake_pipeline) as client:
        first = [client.get("/web/examples").json() for _ in range(5)]
        assert len(calls) == 1 and first[0]["examples"] and all(f == first[0] for f in first)
        _upload(client, 3)
        client.get("/web/examples")
        client.get("/web/examples")
        assert len(calls) == 2


def _chat(parts: int) -> bytes:
    content = [{"type": "x"}] * parts + [{"type": "text", "text": "Who was NATO's first Secretary General?"}]
    return json.dumps({"model": "rag-default", "messages": [{"role": "user", "content": content}]}, separators=(",", ":")).encode()


def test_chat_content_parts_are_capped_before_parsing(fake_pipeline, monkeypatch):
    parsed = []
    monkeypatch.setattr(routes_chat, "_validated", lambda *a: parsed.append(1))
    with make_client(fake_pipeline) as client:
        r = client.post("/v1/chat/completions", content=_chat(180_000), headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "context_length_exceeded" and "content parts" in r.json()["error"]["message"]
        assert not parsed  # refused from the byte count, never parsed


def test_chat_content_parts_spelled_with_escapes_are_counted_after_parsing(fake_pipeline):
    with make_client(fake_pipeline, max_chat_messages=4) as client:
        body = _chat(40).replace(b'"type"', b'"\\u0074ype"', 40)
        r = client.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 413 and "content parts" in r.json()["error"]["message"]
        ok = client.post("/v1/chat/completions", content=_chat(3), headers={"Content-Type": "application/json"})
        assert ok.status_code == 200, ok.text


def test_chat_bodies_are_charged_by_size(fake_pipeline):
    # 6 units a question (1 + 5 passages) and 1 per 128 KiB of body: a 1 MB history costs 14.
    big = [{"role": "user", "content": "beacon " * 20_000}, {"role": "assistant", "content": "ok"}] * 6
    body = {"model": "rag-default", "messages": [*big, {"role": "user", "content": "Who was NATO's first Secretary General?"}]}
    with make_client(fake_pipeline, work_budget="20/minute", max_chat_chars=2_000_000) as client:
        first = client.post("/v1/chat/completions", json=body)
        second = client.post("/v1/chat/completions", json=body)
        assert first.status_code == 200 and second.status_code == 429, (first.text[:200], second.text[:200])
        assert second.json()["error"]["code"] == "rate_limit_exceeded"
