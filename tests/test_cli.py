"""The `rag` command line: index, ask (local and through rag serve), serve, errors (fake encoder via RAG_* environment)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

from typer.testing import CliRunner

from support import ROOT, assert_offsets
from rag import __version__
from rag.cli import app
from rag.pipeline import Pipeline
from rag.settings import Settings

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
    # Offsets refer to the indexed (canonical) text of each document.
    indexed = Pipeline(Settings(index_dir=tmp_path / "index", embedding_model="hashing:256", reader="heuristic")).index
    assert_offsets(body, {doc_id: stored.document.text for doc_id, stored in indexed.documents.items()})
    r = runner.invoke(app, ["ask", "What is the capital of Australia?"], env=env)
    assert r.exit_code == 0 and r.stdout.startswith("No answer")


def test_index_flag_overrides_environment(tmp_path, corpus_dir):
    env = _env(tmp_path)
    other = tmp_path / "other-index"
    r = runner.invoke(app, ["index", str(corpus_dir), "--index", str(other)], env=env)
    assert r.exit_code == 0 and (other / "store.sqlite").exists() and not (tmp_path / "index").exists()


def test_ask_without_index_fails_cleanly(tmp_path):
    r = runner.invoke(app, ["ask", "Anything?"], env=_env(tmp_path))
    assert r.exit_code == 2 and "rag index" in r.output


def test_ask_rejects_empty_question(tmp_path, corpus_dir):
    env = _env(tmp_path)
    runner.invoke(app, ["index", str(corpus_dir)], env=env)
    r = runner.invoke(app, ["ask", "  "], env=env)
    assert r.exit_code == 2 and "empty" in r.output


# ----------------------------------------------------------------------------- version, errors
def test_version():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and r.stdout.strip() == f"rag {__version__}"


def _run(args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    """The real command line in a child process (real stderr, logging and exit code)."""
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


def test_index_missing_path_fails_with_one_line(tmp_path):
    r = _run(["index", str(tmp_path / "no-such-folder")], _env(tmp_path))
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"error: no such file or folder: {tmp_path / 'no-such-folder'}"]
    assert not (tmp_path / "index").exists()


def test_each_skipped_file_is_reported_once(tmp_path, corpus_dir):
    (corpus_dir / "broken.pdf").write_bytes(b"\x00\x01 not a pdf")
    r = _run(["index", str(corpus_dir)], _env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert (r.stdout + r.stderr).count("broken.pdf") == 1, r.stderr
    assert "indexed 2 documents" in r.stdout


HIDE_MILVUS = """
import importlib.machinery, sys
class Uninstalled(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] in ("pymilvus", "milvus_lite"):
            return None
        return importlib.machinery.PathFinder.find_spec(name, path, target)
sys.meta_path[:] = [Uninstalled if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
from rag.cli import app
app()
"""


def test_milvus_backend_without_the_extra_fails_before_embedding(tmp_path, corpus_dir):
    env = {**os.environ, **_env(tmp_path), "RAG_VECTOR_BACKEND": "milvus"}
    r = subprocess.run([sys.executable, "-c", HIDE_MILVUS, "index", str(corpus_dir)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "[milvus]" in lines[0] and 'pip install -e ".[milvus]"' in lines[0], r.stderr
    assert not (tmp_path / "index").exists()  # nothing embedded, no index version written


# ----------------------------------------------------------------------------- serve + ask
@contextmanager
def _rag_serve(tmp_path, env: dict):
    """`rag serve --port 0` in a child process; yields (process, registration file)."""
    server = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", "0"], env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        folder = tmp_path / "run" / f"rag-extractive-qa-{os.getuid()}"
        while not list(folder.glob("*.json")):
            assert server.poll() is None and time.monotonic() < deadline, server.communicate()[1]
            time.sleep(0.1)
        yield server, next(folder.glob("*.json"))
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
            server.wait(30)


def test_ask_uses_a_running_server_on_the_same_index(tmp_path, corpus_dir, monkeypatch):
    env = {**_env(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "run"), "RAG_CORPUS_DIR": str(corpus_dir)}
    question = "Who was NATO's first Secretary General?"
    local = runner.invoke(app, ["ask", question, "--json", "--local"], env=env)  # builds nothing: no index yet
    assert local.exit_code == 2
    with _rag_serve(tmp_path, env) as (server, registration):
        local = runner.invoke(app, ["ask", question, "--json", "--local"], env=env)
        assert local.exit_code == 0, local.output

        def no_local_models(*args, **kwargs):
            raise AssertionError("rag ask loaded the models although rag serve was running")

        monkeypatch.setattr("rag.pipeline.Pipeline", no_local_models)
        fast = runner.invoke(app, ["ask", question, "--json"], env=env)
        assert fast.exit_code == 0, fast.output
        assert "loading the models here" not in fast.stderr
        remote, here = json.loads(fast.stdout), json.loads(local.stdout)
        for body in (remote, here):
            body.pop("timings_ms")
        assert remote == here  # the same JSON as answering locally
        monkeypatch.undo()
    assert server.returncode is not None and not registration.exists()  # unregistered on exit
    again = runner.invoke(app, ["ask", question], env=env)
    assert again.exit_code == 0 and "no `rag serve` running" in again.stderr and "Ismay" in again.stdout


def test_serve_says_where_the_chat_page_and_docs_are(tmp_path, corpus_dir):
    env = {**_env(tmp_path), "XDG_RUNTIME_DIR": str(tmp_path / "run"), "RAG_CORPUS_DIR": str(corpus_dir)}
    with _rag_serve(tmp_path, {**env, "RAG_LOG_JSON": "false"}) as (server, registration):
        url = json.loads(registration.read_text())["url"]
    err = server.stderr.read()
    assert f"chat page: {url}/" in err and f"API docs:  {url}/docs" in err
    assert not any(line.startswith("{") for line in err.splitlines()), "plain lines when RAG_LOG_JSON=false"
    # not a terminal and nothing asked: JSON lines, the URLs as fields of the "ready" record
    with _rag_serve(tmp_path, env) as (server, registration):
        url = json.loads(registration.read_text())["url"]
    records = [json.loads(line) for line in server.stderr.read().splitlines() if line.startswith("{")]
    ready = [r for r in records if r["message"] == "ready"]
    assert ready and ready[0]["chat_url"] == url + "/" and ready[0]["docs_url"] == url + "/docs"


LIST_NOTES = ("Packing list\n\nThings to bring:\n\n" + "".join(f"- {item}\n" for item in (
    "a tent with two poles", "a sleeping bag rated to minus five", "the blue stove made by Primus", "matches in a waterproof tin",
    "a map of the Cairngorms", "water filter", "head torch", "spare socks", "first aid kit", "whistle", "sun cream", "rain jacket")))


def test_ask_shows_the_sentence_around_the_answer_and_the_paragraph_with_a_flag(tmp_path):
    """A list paragraph has no sentence ends: the answer's own line is shown, not 12 lines (issue 21)."""
    env = _env(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "list.md").write_text(LIST_NOTES)
    assert runner.invoke(app, ["index", str(tmp_path / "notes")], env=env).exit_code == 0
    r = runner.invoke(app, ["ask", "Who made the blue stove?", "--local"], env=env)
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "1. Primus" and lines[2] == "   \u201cthe blue stove made by Primus\u201d" and len(lines) == 3
    r = runner.invoke(app, ["ask", "Who made the blue stove?", "--local", "--paragraph"], env=env)
    assert r.exit_code == 0 and "   spare socks" in r.stdout.splitlines() and "   the blue stove made by Primus" in r.stdout.splitlines()


def test_excerpt_cuts_a_long_sentence_around_the_answer():
    from rag.cli import EXCERPT_CHARS, excerpt

    text = "Intro line\n" + " ".join(f"word{i}" for i in range(200)) + " the answer is Miriam Casaubon and " + " ".join(f"tail{i}" for i in range(200)) + "."
    start = text.index("Miriam Casaubon")
    answer = {"citation": {"paragraph_text": text, "answer_start": start, "answer_end": start + 15}, "context_start": 0, "context_end": len(text)}
    shown = excerpt(answer)
    assert shown.startswith("...word") and shown.endswith("...") and "Miriam Casaubon" in shown and "Intro" not in shown
    assert len(shown) <= EXCERPT_CHARS + 6
    short = {"citation": {"paragraph_text": "Intro\nThe keeper was Miriam Casaubon.", "answer_start": 21, "answer_end": 36}, "context_start": 0, "context_end": 37}
    assert excerpt(short) == "The keeper was Miriam Casaubon."


def test_index_says_other_documents_stay_and_only_removes_them(tmp_path, corpus_dir):
    """`rag index FOLDER` on the default index kept the example documents silently (issue 21)."""
    env = _env(tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "list.md").write_text(LIST_NOTES)
    assert runner.invoke(app, ["index", str(corpus_dir)], env=env).exit_code == 0
    r = runner.invoke(app, ["index", str(tmp_path / "notes")], env=env)
    assert r.exit_code == 0 and "indexed 3 documents" in r.stdout
    assert "the index also holds 2 other documents (korea-2024-nato-summit, nato-indo-pacific-pivot)" in r.stdout
    assert f"rag index {tmp_path / 'notes'} --only" in r.stdout
    r = runner.invoke(app, ["index", str(tmp_path / "notes"), "--only"], env=env)
    assert r.exit_code == 0 and "indexed 1 documents" in r.stdout and "removed 2" in r.stdout and "other document" not in r.stdout
    r = runner.invoke(app, ["ask", "Who was NATO's first Secretary General?", "--local"], env=env)
    assert r.stdout.startswith("No answer")
