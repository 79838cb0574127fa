"""The official ``openai`` client against the running server on loopback: plain, streaming, follow-up."""
from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from support import indexed_pipeline, serve
from rag.api.app import create_app

QUESTION = "Who was NATO's first Secretary General?"
MODEL = "rag-default"


@pytest.fixture(scope="module")
def base_url(tmp_path_factory) -> Iterator[str]:
    pipeline = indexed_pipeline(tmp_path_factory.mktemp("openai"))
    with serve(create_app(pipeline.settings, pipeline, warm_up=False)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key="unused", max_retries=0, timeout=20)


def test_models(client):
    assert MODEL in [m.id for m in client.models.list()]
    assert client.models.retrieve(MODEL).id == MODEL


def test_plain_completion_is_cited(client, base_url):
    completion = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    message = completion.choices[0].message
    assert message.role == "assistant" and completion.choices[0].finish_reason == "stop"
    assert message.content.startswith("Lord Hastings Lionel Ismay [1]")
    assert message.annotations, "url_citation annotations are parsed by the client"
    for annotation in message.annotations:
        assert annotation.type == "url_citation"
        cite = annotation.url_citation
        assert message.content[cite.start_index : cite.end_index] == "[1]"
        assert cite.title.startswith("NATO at 75")
        assert cite.url == f"{base_url}/documents/nato-indo-pacific-pivot?p=1#p1"
    page = httpx.get(message.annotations[0].url_citation.url.split("#")[0])
    assert page.status_code == 200 and 'id="p1"' in page.text and "Lionel Ismay" in page.text
    extra = completion.model_extra
    ask = httpx.post(f"{base_url}/v1/ask", json={"question": QUESTION}).json()
    assert extra["citations"] == [a["citation"] for a in ask["answers"]]
    assert extra["rewritten_question"] == QUESTION
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens > 0


def test_streaming_completion_is_cited(client):
    plain = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True, stream_options={"include_usage": True}
    )
    pieces, citations, annotations, finish, usage = [], None, None, None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        pieces.append(choice.delta.content or "")
        if (chunk.model_extra or {}).get("citations"):
            assert finish is None, "citations arrive before the last chunk"
            citations = chunk.model_extra["citations"]
            annotations = (choice.delta.model_extra or {}).get("annotations")
        finish = choice.finish_reason or finish
    assert len([p for p in pieces if p]) > 3, "the content is streamed in pieces"
    assert "".join(pieces) == plain.choices[0].message.content
    assert citations == plain.model_extra["citations"]
    assert [a["url_citation"] for a in annotations] == [a.url_citation.model_dump() for a in plain.choices[0].message.annotations]
    assert finish == "stop" and usage.total_tokens == plain.usage.total_tokens


def test_follow_up_carries_the_subject(client):
    first = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    history = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "and where did it hold its 75th anniversary summit?"},
    ]
    follow_up = client.chat.completions.create(model=MODEL, messages=history)
    assert follow_up.model_extra["rewritten_question"] == "Where did NATO hold its 75th anniversary summit?"
    assert "Washington" in follow_up.choices[0].message.content
    streamed = client.chat.completions.create(model=MODEL, messages=history, stream=True)
    rewritten = {(c.model_extra or {}).get("rewritten_question") for c in streamed} - {None}
    assert rewritten == {"Where did NATO hold its 75th anniversary summit?"}


def test_abstention_and_errors(client):
    none = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "What is the capital of Australia?"}])
    assert none.choices[0].message.content.startswith("The documents don't say.")
    assert not none.choices[0].message.annotations
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    assert "rag-default" in missing.value.message
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=[{"role": "system", "content": "no question here"}])
