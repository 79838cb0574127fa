"""Request ids, JSON logs, Prometheus /metrics, Server-Timing, and JSON 500s with the request id."""
from __future__ import annotations

import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from rag.api.observability import JsonFormatter, RequestContext, _current, record_stage
from test_security import make_client

QUESTION = {"question": "Who was NATO's first Secretary General?"}


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_request_id_is_generated_echoed_and_sanitised(fake_pipeline):
    with make_client(fake_pipeline) as client:
        generated = client.get("/healthz").headers["x-request-id"]
        assert len(generated) == 32
        assert client.get("/healthz").headers["x-request-id"] != generated
        assert client.get("/healthz", headers={"X-Request-ID": "trace-42.a:b"}).headers["x-request-id"] == "trace-42.a:b"
        for bad in ("has space", "x" * 129, "quote\"", "new%0Aline"):
            echoed = client.get("/healthz", headers={"X-Request-ID": bad}).headers["x-request-id"]
            assert echoed != bad and len(echoed) == 32


def test_server_timing_has_the_pipeline_stages(fake_pipeline):
    with make_client(fake_pipeline) as client:
        timing = client.post("/v1/ask", json=QUESTION).headers["server-timing"]
        names = [part.split(";")[0].strip() for part in timing.split(",")]
        assert names == ["retrieve", "read", "pipeline", "app"]
        assert all(float(part.split("dur=")[1]) >= 0 for part in timing.split(","))
        assert [p.split(";")[0].strip() for p in client.post("/v1/search", json={"query": "Ismay"}).headers["server-timing"].split(",")] == ["retrieve", "app"]
        assert client.get("/healthz").headers["server-timing"].startswith("app;dur=")
        # The batch routes report through the same recorder (search:batch used to bypass it).
        batch = client.post("/v1/search:batch", json={"queries": ["Ismay", "Seoul"]}).headers["server-timing"]
        assert [p.split(";")[0].strip() for p in batch.split(",")] == ["retrieve", "app"]
        asks = client.post("/v1/ask:batch", json={"questions": ["Who was Ismay?", "Where is Seoul?"]}).headers["server-timing"]
        assert [p.split(";")[0].strip() for p in asks.split(",")] == ["retrieve", "read", "pipeline", "app"]


def test_metrics_in_prometheus_format(fake_pipeline):
    with make_client(fake_pipeline) as client:
        client.post("/v1/ask", json=QUESTION)
        client.get("/v1/documents/no-such-document")
        client.post("/v1/documents", json={"document_id": "zorblax", "text": "The zorblax beacon is blue."})
        r = client.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        samples = _samples(r.text)
    assert samples[("rag_http_requests_total", (("method", "POST"), ("route", "/v1/ask"), ("status", "200")))] == 1
    # the route template, not the raw path: bounded label values
    not_found = (("method", "GET"), ("route", "/v1/documents/{document_id}"), ("status", "404"))
    assert samples[("rag_http_requests_total", not_found)] == 1
    assert samples[("rag_http_errors_total", not_found)] == 1
    assert samples[("rag_http_request_duration_seconds_count", (("method", "POST"), ("route", "/v1/ask")))] == 1
    for stage in ("retrieve", "read", "pipeline", "index_update"):
        assert samples[("rag_stage_duration_seconds_count", (("stage", stage),))] >= 1
    assert samples[("rag_index_documents", ())] == 3
    assert samples[("rag_index_passages", ())] > 10
    assert samples[("rag_index_bytes", ())] > 1000
    assert any(name == "rag_index_info" for name, _ in samples)


def test_json_access_log_carries_the_request_id(fake_pipeline, capsys):
    with make_client(fake_pipeline, log_json=True) as client:
        capsys.readouterr()
        request_id = client.post("/v1/ask", json=QUESTION, headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "rag.access"]
    assert access, "no access log line"
    line = access[-1]
    assert request_id == "abc-123" == line["request_id"]
    assert line["method"] == "POST" and line["path"] == "/v1/ask" and line["route"] == "/v1/ask"
    assert line["status"] == 200 and line["duration_ms"] >= 0 and line["level"] == "INFO" and line["time"].endswith("Z")


def test_json_formatter_adds_request_id_and_extras():
    token = _current.set(RequestContext("req-7"))
    try:
        record = logging.LogRecord("rag.x", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
        record.document_id = "doc-1"
        data = json.loads(JsonFormatter().format(record))
        record_stage("custom", 1.5)  # no metrics object: only the request's own stages
        assert _current.get().stages == {"custom": 1.5}
    finally:
        _current.reset(token)
    assert data["message"] == "hello world" and data["request_id"] == "req-7" and data["document_id"] == "doc-1"
    record_stage("outside", 1.0)  # outside a request: a no-op


def test_unhandled_error_is_a_json_500_with_the_request_id(fake_pipeline):
    with make_client(fake_pipeline) as client:

        @client.app.get("/v1/boom")
        def boom():
            raise RuntimeError("kaboom")

        r = client.get("/v1/boom", headers={"X-Request-ID": "boom-1"})
        assert r.status_code == 500
        assert r.json() == {"detail": "internal error; request id boom-1"}
        assert r.headers["x-request-id"] == "boom-1"
        assert "kaboom" not in r.text
        samples = _samples(client.get("/metrics").text)
        assert samples[("rag_http_errors_total", (("method", "GET"), ("route", "/v1/boom"), ("status", "500")))] == 1


def test_metrics_cardinality_is_bounded_by_construction(fake_pipeline):
    """Issue 20 item 4: made-up methods and paths must not mint label values (20,000 keyless
    requests took /metrics from 26 lines to 460,047). Any method outside HTTP's standard set
    is "other"; any path no route matches is "unmatched"."""
    with make_client(fake_pipeline) as client:
        client.get("/healthz")
        baseline = len(client.get("/metrics").text.splitlines())
        for i in range(200):
            client.request(f"FAKE{i}", f"/made-up/{i}")
            client.request(f"X{i}", "/healthz")
            client.get(f"/no-such-path-{i}")
        text = client.get("/metrics").text
    samples = _samples(text)
    methods = {dict(labels).get("method") for name, labels in samples if name == "rag_http_requests_total"}
    routes = {dict(labels).get("route") for name, labels in samples if name == "rag_http_requests_total"}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}, methods
    assert "other" in methods and "unmatched" in routes
    assert not any(r.startswith("/made-up") or r.startswith("/no-such") for r in routes)
    # 600 requests with 400 methods and 400 paths: a fixed handful of new series, not hundreds
    assert len(text.splitlines()) < baseline + 150, (baseline, len(text.splitlines()))
