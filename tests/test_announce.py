"""`rag serve`'s start-up line (issue 22, item 7): "no index yet" only when there is none; an index
that cannot be loaded is logged with its cause, and anything else is not swallowed."""
from __future__ import annotations

import logging

import pytest

from rag.errors import IndexDamaged, NotReady
from rag.serving import announce
from rag.settings import Settings


class _Pipeline:
    def __init__(self, error: Exception):
        self.error = error

    @property
    def index(self):
        raise self.error


def test_announce_tells_a_missing_index_from_a_broken_one(tmp_path, capsys, caplog):
    settings = Settings(index_dir=tmp_path / "index", log_json=False)
    announce(settings, "http://127.0.0.1:8000", _Pipeline(NotReady("no index at index: run `rag index` first")))
    assert "no index yet" in capsys.readouterr().err
    with caplog.at_level(logging.ERROR, logger="rag.serve"):
        announce(settings, "http://127.0.0.1:8000", _Pipeline(IndexDamaged("segment seg-1 is damaged")))
    assert "cannot be loaded" in capsys.readouterr().err
    assert any("segment seg-1 is damaged" in r.getMessage() for r in caplog.records)
    with pytest.raises(ZeroDivisionError):  # a bug, not "no index yet"
        announce(settings, "http://127.0.0.1:8000", _Pipeline(ZeroDivisionError("bug")))
