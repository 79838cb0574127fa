"""Issue 22, item 3: configuration flows one way.  Settings reads the environment once; the CLI and
the app factory pass it down, and the loaders build what the settings describe."""
from __future__ import annotations

import re
from pathlib import Path

from rag.embedding import load_encoder
from rag.host import usable_cores
from rag.reading import load_reader
from rag.settings import Settings

RAG = Path(__file__).resolve().parent.parent / "rag"
# Reading the environment: os.environ / os.getenv, or the old cached settings.
READS = re.compile(r"os\.environ|getenv\(|get_settings\(")
# A child process's environment, copied from ours and extended (parse workers, man, benchmarks'
# servers): passing it on, not reading configuration.
CHILD_ENV = re.compile(r"\{\*\*os\.environ")


def test_only_settings_reads_the_environment():
    offenders = []
    for path in sorted(RAG.rglob("*.py")):
        relative = path.relative_to(RAG).as_posix()
        if relative == "settings.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if READS.search(line) and not CHILD_ENV.search(line):
                offenders.append(f"rag/{relative}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_the_loaders_build_what_the_settings_say(tmp_path):
    settings = Settings(embedding_model="sentence-transformers/all-MiniLM-L6-v2", reader="span", onnx_cache_dir=tmp_path)
    encoder = load_encoder(settings)
    assert (encoder.runtime, encoder.threads, encoder.onnx_cache_dir, encoder.device) == ("auto", usable_cores(), tmp_path, "cpu")
    reader = load_reader(settings)
    assert (reader.runtime, reader.quantize, reader.onnx_threads, reader.onnx_cache_dir) == ("auto", "int8", usable_cores(), tmp_path)
    assert reader.max_answer_tokens == settings.max_answer_tokens
    changed = settings.model_copy(update={"encoder_runtime": "torch", "reader_runtime": "onnx", "reader_quantize": "none", "onnx_threads": 3})
    assert (load_encoder(changed).runtime, load_encoder(changed).threads) == ("torch", 3)
    assert (load_reader(changed).runtime, load_reader(changed).quantize, load_reader(changed).onnx_threads) == ("onnx", "none", 3)


def test_serve_logs_by_its_terminal_unless_rag_log_json_is_set(monkeypatch):
    """The CLI asks Settings whether RAG_LOG_JSON was given (not os.environ)."""
    monkeypatch.delenv("RAG_LOG_JSON", raising=False)
    assert "log_json" not in Settings().model_fields_set
    monkeypatch.setenv("RAG_LOG_JSON", "false")
    assert "log_json" in Settings().model_fields_set and Settings().log_json is False
    monkeypatch.setenv("RAG_API_KEY", "k1")
    assert Settings().api_key.get_secret_value() == "k1"
