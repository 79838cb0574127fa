"""The service runs on the core install: no optional extra is needed to serve and answer.

A child process hides the extras' packages from the import system (as if they were not
installed), then loads the API with the default encoder and reader, indexes the default corpus
and answers a question over HTTP.  The CLI is imported too (it registers eval and bench).
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from support import CORPUS, ROOT
from rag.extras import EXTRAS

HIDDEN = sorted({name for names in EXTRAS.values() for name in names} | {"ranx"})

CHILD = textwrap.dedent(
    """
    import importlib.machinery, json, sys
    HIDDEN = set(json.loads(sys.argv[1]))

    class Uninstalled(importlib.machinery.PathFinder):
        # Finds everything the normal path finder finds, except the hidden top-level packages.
        @classmethod
        def find_spec(cls, name, path=None, target=None):
            if name.partition(".")[0] in HIDDEN:
                return None
            return importlib.machinery.PathFinder.find_spec(name, path, target)

    sys.meta_path[:] = [Uninstalled if f is importlib.machinery.PathFinder else f for f in sys.meta_path]

    from pathlib import Path
    from fastapi.testclient import TestClient
    import rag.cli  # noqa: F401  (registers eval/bench without importing their extras)
    from rag.api.app import create_app
    from rag.extras import missing
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    base = Path(sys.argv[2])
    settings = Settings(index_dir=base / "index", corpus_dir=sys.argv[3])
    pipeline = Pipeline(settings)
    pipeline.index_paths([settings.corpus_dir])
    with TestClient(create_app(settings, pipeline)) as client:
        body = client.post("/v1/ask", json={"question": "Who was NATO's first Secretary General?"}).json()
    print(json.dumps({
        "answer": body["answers"][0]["text"] if body["answers"] else None,
        "missing": {extra: missing(extra) for extra in ("eval", "bench", "milvus", "mcp")},
        "loaded": sorted(n for n in sys.modules if n.partition(".")[0] in HIDDEN),
    }))
    """
)


def test_service_answers_without_optional_extras(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(HIDDEN), str(tmp_path), str(CORPUS)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # The hook works: the extras' packages look uninstalled to the service...
    assert result["missing"] == {extra: list(names) for extra, names in EXTRAS.items()}
    assert result["loaded"] == []
    # ...and it still answers, with the default encoder and reader.
    assert result["answer"] == "Lord Hastings Lionel Ismay"
