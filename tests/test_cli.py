"""The `rag` command line: index, ask --json, errors (fake encoder via RAG_* environment)."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from conftest import assert_offsets
from rag.cli import app

runner = CliRunner()


def _env(tmp_path):
    return {"RAG_INDEX_DIR": str(tmp_path / "index"), "RAG_EMBEDDING_MODEL": "hashing:256", "RAG_READER": "heuristic"}


def test_index_then_ask_json(tmp_path, corpus_dir):
    env = _env(tmp_path)
    r = runner.invoke(app, ["index", str(corpus_dir)], env=env)
    assert r.exit_code == 0, r.output
    assert "indexed 2 documents" in r.output
    r = runner.invoke(app, ["index", str(corpus_dir)], env=env)
    assert "unchanged 2" in r.output and "embedded 0 passages" in r.output
    r = runner.invoke(app, ["ask", "Who was NATO's first Secretary General?", "--json"], env=env)
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout.strip().splitlines()[-1])
    assert "Lord Hastings Lionel Ismay" in body["answers"][0]["text"]
    docs = {p.stem: p.read_text(encoding="utf-8") for p in corpus_dir.glob("*.txt")}
    assert_offsets(body, docs)
    r = runner.invoke(app, ["ask", "What is the capital of Australia?"], env=env)
    assert r.exit_code == 0 and r.stdout.startswith("No answer")


def test_index_flag_overrides_environment(tmp_path, corpus_dir):
    env = _env(tmp_path)
    other = tmp_path / "other-index"
    r = runner.invoke(app, ["index", str(corpus_dir), "--index", str(other)], env=env)
    assert r.exit_code == 0 and (other / "CURRENT").exists() and not (tmp_path / "index").exists()


def test_ask_without_index_fails_cleanly(tmp_path):
    r = runner.invoke(app, ["ask", "Anything?"], env=_env(tmp_path))
    assert r.exit_code == 2 and "rag index" in r.output


def test_ask_rejects_empty_question(tmp_path, corpus_dir):
    env = _env(tmp_path)
    runner.invoke(app, ["index", str(corpus_dir)], env=env)
    r = runner.invoke(app, ["ask", "  "], env=env)
    assert r.exit_code == 2 and "empty" in r.output
