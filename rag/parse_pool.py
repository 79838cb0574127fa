"""Untrusted files are parsed in worker processes whose limits the OS enforces.

A 2.7 KB PDF (one page, 20,000 words) held the GIL for >= 139 CPU-s in pdfplumber's
quadratic ``dedupe_chars`` (PDFs are now read with pdfium, but any parser can meet its worst
case): the event loop never ran and the parse-time check between pages never came (issue 20,
item 1).  Here each file is parsed by a worker process with

* a CPU budget: ``RLIMIT_CPU`` (soft) is set to the worker's CPU time so far plus
  ``RAG_MAX_PARSE_SECONDS`` before each file; past it the kernel sends SIGXCPU and the worker
  dies.  A wall-clock deadline (twice the budget, + 10 s) kills a worker that waits instead;
* an address-space budget: ``RLIMIT_AS`` is the worker's size before the file plus
  ``RAG_MAX_PARSE_MEMORY_MB`` (a 578 KB .docx took 2.98 GB RSS);
* an output budget: a parse whose pickled result is larger than
  ``OUTPUT_BYTES_PER_INPUT_BYTE`` x the file + 64 MiB is refused.

A worker that dies or overruns is replaced; its file gets ``DocumentTooLarge`` (413, or skipped
by ``rag index``) with the reason; other files go on.  Workers are fresh interpreters (never forked from
a server with threads) and reused: one start (~1 s of imports) per worker, not per file.  At
most ``MAX_WORKERS`` files are parsed at once; the calling thread waits on a pipe, so the event
loop never waits on a parser (uploads call this from a worker thread).
"""
from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from rag.errors import DocumentTooLarge

log = logging.getLogger(__name__)

# Two parses at once: the service's target is 2 cores, and a third would only queue for CPU.
MAX_WORKERS = 2
# A worker is replaced after this many files: fragmentation and caches stay bounded.
TASKS_PER_WORKER = 200
# Canonical text plus blocks pickle to ~2-6x the text of real documents; 16x the file's bytes
# (+ 64 MiB) only refuses outputs no real file produces.
OUTPUT_BYTES_PER_INPUT_BYTE = 16
OUTPUT_SLACK_BYTES = 64 * 2**20
_FRAME = struct.Struct("!Q")  # each pickle on the pipes is preceded by its length
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)  # so the worker imports this rag


@dataclass(frozen=True)
class Job:
    filename: str
    data: bytes
    document_id: str | None
    metadata: dict[str, str] | None
    source_path: str
    limits: Any  # rag.ingest.IngestLimits, with sandbox off (the worker parses in place)
    cpu_seconds: int
    memory_bytes: int


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise EOFError("the other side closed the pipe")
        data += chunk
    return bytes(data)


def _write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(_FRAME.pack(len(payload)) + payload)
    stream.flush()


class _Worker:
    """One ``python -m rag.parse_worker`` process: never forked from a server with threads, and
    independent of the caller's ``__main__`` (multiprocessing's spawn re-runs it).  The worker's
    side is its own module, which imports rag.ingest: ingest imports this module, so the worker
    code here would close an import cycle."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (_PACKAGE_ROOT, os.environ.get("PYTHONPATH"))))}
        self.process = subprocess.Popen([sys.executable, "-m", "rag.parse_worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        env=env, close_fds=True)
        self.tasks = 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def send(self, job: Job) -> None:
        assert self.process.stdin is not None
        _write_frame(self.process.stdin, pickle.dumps(job, protocol=pickle.HIGHEST_PROTOCOL))

    def receive(self, timeout: float) -> bytes | None:
        """The result frame; None when nothing came within ``timeout`` seconds."""
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            return None
        (size,) = _FRAME.unpack(_read_exactly(stdout, _FRAME.size))
        return _read_exactly(stdout, size)

    def stop(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait(5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class ParsePool:
    def __init__(self, workers: int = MAX_WORKERS) -> None:
        self._slots = threading.BoundedSemaphore(workers)
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.stop()
        return _Worker()

    def _give_back(self, worker: _Worker) -> None:
        worker.tasks += 1
        if worker.tasks >= TASKS_PER_WORKER:
            worker.stop()
            return
        with self._lock:
            self._idle.append(worker)

    def parse(self, job: Job):
        """The file's Document; raises what parsing raised, or DocumentTooLarge for a worker
        that ran out of CPU time, memory or wall-clock time."""
        with self._slots:
            worker = self._take()
            died = False
            try:
                worker.send(job)
                payload = worker.receive(2 * job.cpu_seconds + 10)
            except (EOFError, OSError):
                payload, died = None, True
            if payload is None:
                if died:
                    try:
                        worker.process.wait(5)
                    except subprocess.TimeoutExpired:
                        pass
                exitcode = worker.process.poll()  # None: still running at the wall-clock deadline
                worker.stop()
                raise DocumentTooLarge(self._reason(job, exitcode))
            self._give_back(worker)
        result = pickle.loads(payload)
        if result[0] == "ok":
            return result[1]
        raise result[1](result[2])

    @staticmethod
    def _reason(job: Job, exitcode: int | None) -> str:
        name = job.filename
        if exitcode == -signal.SIGXCPU:
            return f"parsing {name} took more than {job.cpu_seconds} CPU-seconds (RAG_MAX_PARSE_SECONDS)"
        if exitcode is None:
            return f"parsing {name} took more than {2 * job.cpu_seconds + 10} s (RAG_MAX_PARSE_SECONDS)"
        log.warning("parse worker for %s ended with exit code %s", name, exitcode)
        return f"parsing {name} stopped the parser (exit code {exitcode}): out of memory or a parser crash (RAG_MAX_PARSE_MEMORY_MB)"

    def close(self) -> None:
        with self._lock:
            for worker in self._idle:
                worker.stop()
            self._idle.clear()


_pool: ParsePool | None = None
_pool_lock = threading.Lock()


def pool() -> ParsePool:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ParsePool()
        return _pool


def parse_in_worker(filename: str, data: bytes, document_id: str | None, metadata: dict[str, str] | None,
                    source_path: str, limits) -> Any:
    """``rag.ingest.document_from_bytes`` in a worker process with ``limits``' CPU and memory budgets."""
    cpu = max(1, int(limits.max_parse_seconds or 120))
    job = Job(filename, data, document_id, metadata, source_path, replace(limits, sandbox=False), cpu, limits.max_parse_memory_bytes)
    return pool().parse(job)
