"""`rag bench` end to end on toy sizes: the code path runs and the report is written.

Nothing is timed or compared with a target here (benchmarks are not tests); the run uses the
hashing encoder, the heuristic reader, a three-article SQuAD-format file made by the test,
and sizes of a few hundred vectors.
"""
from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from rag.cli import app

ARTICLES = {
    "Alpine lakes": ["Lake Geneva lies between Switzerland and France. Its area is 580 square kilometres.",
                     "Lake Constance borders Germany, Austria and Switzerland. The Rhine flows through it."],
    "Rivers": ["The Danube flows through ten countries before it reaches the Black Sea.",
               "The Rhine rises in the Swiss Alps and flows into the North Sea near Rotterdam."],
    "Mountains": ["Mont Blanc is the highest mountain of the Alps, at 4,806 metres.",
                  "The Matterhorn was first climbed in 1865 by Edward Whymper's party."],
}


def _squad(path: Path) -> Path:
    data = []
    for title, paragraphs in ARTICLES.items():
        data.append({"title": title, "paragraphs": [
            {"context": text, "qas": [{"id": f"{title}-{i}", "question": f"What about {text.split()[1]}?",
                                       "answers": [{"text": text.split()[1], "answer_start": text.index(text.split()[1])}]}]}
            for i, text in enumerate(paragraphs)]})
    path.write_text(json.dumps({"version": "1.1", "data": data}))
    return path


def test_bench_runs_every_section_and_writes_the_report(tmp_path: Path, corpus_dir: Path, monkeypatch):
    monkeypatch.setenv("RAG_READER", "heuristic")
    squad = _squad(tmp_path / "squad.json")
    out = tmp_path / "eval"
    result = CliRunner().invoke(app, [
        "bench", "--out", str(out), "--squad", str(squad), "--model", "hashing:256", "--reader", "heuristic",
        "--corpus", str(corpus_dir), "--sizes", "300,1200", "--text-max", "300", "--requests", "4",
        "--concurrency", "1,2", "--cache", str(tmp_path / "cache"),
    ])
    assert result.exit_code == 0, result.output
    for name in ("build", "latency", "http", "scale"):
        assert (out / "bench" / f"{name}.json").is_file(), name
    build = json.loads((out / "bench" / "build.json").read_text())
    assert build["squad"]["documents"] == 6 and build["squad"]["peak_rss_mb"] > 0
    http = json.loads((out / "bench" / "http.json").read_text())
    assert {(r["path"], r["concurrency"]) for r in http["levels"]} >= {("/v1/search", 2), ("/v1/ask", 1), ("/v1/ask:batch", 1)}
    assert all(r["errors"] == {} and r["ok"] == r["requests"] for r in http["levels"])
    scale = json.loads((out / "bench" / "scale.json").read_text())
    assert [r["passages"] for r in scale["vectors"]] == [300, 1200] and scale["text"][0]["passages"] == 300
    assert all(0 <= r["recall_at_10"] <= 1 for r in scale["vectors"])
    writes = json.loads((out / "bench" / "writes.json").read_text())
    assert [r["documents"] for r in writes["rows"]] == [300, 1200] and all(r["upload_ms"]["n"] == 20 for r in writes["rows"])
    service = json.loads((out / "bench" / "service.json").read_text())
    assert [r["documents"] for r in service["rows"]] == [6, 1200]  # the SQuAD paragraphs, then the largest size
    assert all(r["startup_to_readyz_s"] > 0 and r["memory_ready"]["rss_mb"] > 0 and r["upload_ms"]["n"] == 20 for r in service["rows"])
    assert service["rows"][0]["hybrid_recall_at_5"] == 1.0  # every answer is in one of the 6 passages
    report = (out / "BENCHMARKS.md").read_text()
    assert "rag bench --section scale" in report and "## HTTP latency" in report and "## The service at scale" in report
    assert (out / "bench" / "scale.png").is_file() and (out / "bench" / "http.png").is_file()
