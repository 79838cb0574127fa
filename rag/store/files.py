"""Durable file writes: fsync of files and folders, atomic replace, full-disk detection."""
from __future__ import annotations

import errno
import os
import sqlite3
import threading
from pathlib import Path
from typing import BinaryIO, Literal

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


def read_array_header(fh: BinaryIO) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of the .npy file read from its start by ``fh``, which is left at the first
    row; the header is parsed under ``load_array``'s lock for the same reason."""
    with _NPY_LOCK:
        version = np.lib.format.read_magic(fh)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = header(fh)
    return tuple(shape), np.dtype(dtype)


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# How the libraries under the index say "disk full" when it is not an OSError: SQLite's
# SQLITE_FULL (sqlite3.OperationalError "database or disk is full"), tantivy's Rust io::Error in
# a ValueError's text ("No space left on device (os error 28)"), FAISS' C++ exception text.
_DISK_FULL_TEXTS = ("no space left on device", "os error 28", "database or disk is full", "disk quota exceeded",
                    "storagefull", "code: 28")
SQLITE_FULL = 13


def is_disk_full(exc: BaseException, folder: Path | None = None) -> bool:
    """Whether ``exc`` (or an exception it was raised from) says the disk or a quota is full;
    with ``folder``, a generic I/O error (SQLite's "disk I/O error") on a filesystem with
    under 1 MiB free counts too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        if isinstance(current, sqlite3.Error) and getattr(current, "sqlite_errorcode", None) == SQLITE_FULL:
            return True
        if isinstance(current, (ValueError, RuntimeError, sqlite3.Error, OSError)) and any(
                text in str(current).lower() for text in _DISK_FULL_TEXTS):
            return True
        if isinstance(current, sqlite3.OperationalError) and folder is not None and "i/o error" in str(current).lower():
            return disk_full(folder)
        current = current.__cause__ or current.__context__
    return False


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
