"""Durable file writes: fsync of files and folders, atomic replace, full-disk detection."""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Literal

import numpy as np

# np.load parses the .npy header with ast.literal_eval, and CPython 3.11's AST constructor keeps
# its recursion depth in per-interpreter state: two threads parsing at once can fail with
# "SystemError: AST constructor recursion depth mismatch" (python/cpython#106905).  Segments are
# loaded by request threads on reload and by the compaction thread, so loads take turns (the
# header parse is microseconds; memory-mapped data is not read here).
_NPY_LOCK = threading.Lock()


def load_array(path: Path, mmap_mode: Literal["r"] | None = None) -> np.ndarray:
    with _NPY_LOCK:
        return np.load(path, mmap_mode=mmap_mode)


def disk_full(folder: Path) -> bool:
    try:
        stats = os.statvfs(folder)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 1024 * 1024


def fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_file():
            with path.open("rb") as fh:
                os.fsync(fh.fileno())
        else:
            fsync_dir(path)
    fsync_dir(folder)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
