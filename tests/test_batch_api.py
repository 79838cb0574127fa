"""POST /v1/ask:batch and /v1/search:batch: same answers as one by one, bounded size, 422s."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from support import assert_offsets
from rag.api.app import create_app
from rag.api.routes_batch import MAX_BATCH

QUESTIONS = [
    "Who was NATO's first Secretary General?",
    "When was the East-West Center established?",
    "What is the capital of Australia?",
]


@pytest.fixture
def client(fake_pipeline) -> TestClient:
    with TestClient(create_app(fake_pipeline.settings, fake_pipeline), raise_server_exceptions=False) as c:
        yield c


def _docs(pipeline) -> dict[str, str]:
    return {doc_id: stored.document.text for doc_id, stored in pipeline.index.documents.items()}


def test_ask_batch_matches_single_asks_in_order(client, fake_pipeline):
    r = client.post("/v1/ask:batch", json={"questions": QUESTIONS, "top_k": 3})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["question"] for x in results] == QUESTIONS
    for question, batched in zip(QUESTIONS, results):
        single = client.post("/v1/ask", json={"question": question, "top_k": 3}).json()
        assert [a["text"] for a in batched["answers"]] == [a["text"] for a in single["answers"]]
        assert [p["text"] for p in batched["passages"]] == [p["text"] for p in single["passages"]]
        assert set(batched) == set(single)
        assert_offsets(batched, _docs(fake_pipeline))
    assert "Lord Hastings Lionel Ismay" in results[0]["answers"][0]["text"]
    assert results[2]["answers"] == [] and results[2]["no_answer"]["reason"]


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_search_batch_matches_single_searches(client, mode):
    queries = ["NATO first Secretary General Ismay", "South Korea NATO partnership"]
    r = client.post("/v1/search:batch", json={"queries": queries, "top_k": 4, "mode": mode})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["query"] for x in results] == queries
    # each query's retrieval time is the batch's (Server-Timing, 0.1 ms steps) shared evenly
    [batch_ms] = [float(part.split("dur=")[1]) for part in r.headers["server-timing"].split(",") if part.strip().startswith("retrieve;")]
    shares = [x["timings_ms"]["retrieve"] for x in results]
    assert shares[0] == shares[1] > 0 and sum(shares) == pytest.approx(batch_ms, abs=0.05 + 0.01 * len(shares))
    for query, batched in zip(queries, results):
        single = client.post("/v1/search", json={"query": query, "top_k": 4, "mode": mode}).json()
        assert [(p["document_id"], p["paragraph_index"], p["text"]) for p in batched["passages"]] == [
            (p["document_id"], p["paragraph_index"], p["text"]) for p in single["passages"]
        ]
        assert batched["passages"][0]["scores"] == pytest.approx(single["passages"][0]["scores"])


@pytest.mark.parametrize(
    "path, body, message",
    [
        ("/v1/ask:batch", {"questions": ["Why?"] * (MAX_BATCH + 1)}, "questions"),
        ("/v1/search:batch", {"queries": ["NATO"] * (MAX_BATCH + 1)}, "queries"),
        ("/v1/ask:batch", {"questions": []}, "questions"),
        ("/v1/ask:batch", {"questions": ["Who?", "   "]}, "questions[1]"),
        ("/v1/search:batch", {"queries": ["NATO", "x" * 5000]}, "queries[1]"),
        ("/v1/ask:batch", {"questions": ["Who?"], "mode": "fuzzy"}, "mode"),
        ("/v1/ask:batch", {"question": "Who?"}, "questions"),
        ("/v1/search:batch", {"queries": "NATO"}, "queries"),
    ],
)
def test_bad_batches_are_422_with_a_reason(client, path, body, message):
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert message in r.json()["detail"]


def test_largest_batch_is_accepted(client):
    r = client.post("/v1/search:batch", json={"queries": [f"NATO summit {i}" for i in range(MAX_BATCH)], "top_k": 1})
    assert r.status_code == 200 and len(r.json()["results"]) == MAX_BATCH


def test_batch_endpoints_are_in_the_openapi_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/ask:batch" in paths and "/v1/search:batch" in paths
