"""`rag index` of a folder shows a parsing bar with an ETA on a terminal, and nothing in logs."""
from __future__ import annotations

from unittest import mock

from rag import ingest


def _folder(tmp_path, n: int):
    for i in range(n):
        (tmp_path / f"note{i:03d}.txt").write_text(f"Note {i} says the beacon is blue.\n", encoding="utf-8")
    return tmp_path


def test_no_bar_when_stderr_is_not_a_terminal(tmp_path, capsys):
    report = ingest.load_documents([_folder(tmp_path, ingest.PROGRESS_MIN_FILES + 5)])
    assert len(report.documents) == ingest.PROGRESS_MIN_FILES + 5
    assert "parsing" not in capsys.readouterr().err


def test_a_terminal_gets_a_bar_over_the_files(tmp_path, capsys):
    import tqdm.auto

    original = tqdm.auto.tqdm
    seen = {}

    def on_a_terminal(*args, **kwargs):
        seen["disable"] = kwargs.get("disable")
        return original(*args, **{**kwargs, "disable": False if kwargs.get("disable") is None else kwargs["disable"]})

    with mock.patch("tqdm.auto.tqdm", on_a_terminal):
        ingest.load_documents([_folder(tmp_path, ingest.PROGRESS_MIN_FILES)])
    assert seen["disable"] is None  # decided by tqdm from the terminal
    err = capsys.readouterr().err
    assert f"{ingest.PROGRESS_MIN_FILES}/{ingest.PROGRESS_MIN_FILES}" in err and "file/s" in err


def test_a_handful_of_files_gets_no_bar(tmp_path):
    import tqdm.auto

    original = tqdm.auto.tqdm
    seen = {}

    def spy(*args, **kwargs):
        seen["disable"] = kwargs.get("disable")
        return original(*args, **kwargs)

    with mock.patch("tqdm.auto.tqdm", spy):
        ingest.load_documents([_folder(tmp_path, 3)])
    assert seen["disable"] is True
