"""The worker side of rag/parse_pool.py: ``python -m rag.parse_worker`` parses the files it is
sent, one at a time, under the CPU and memory limits each job carries (the pool's docstring
says why and how they are chosen)."""
from __future__ import annotations

import os
import pickle
import resource
import signal
import sys

from rag.errors import DocumentTooLarge, RagError, UnsupportedDocument
from rag.ingest import document_from_bytes
from rag.parse_pool import _FRAME, OUTPUT_BYTES_PER_INPUT_BYTE, OUTPUT_SLACK_BYTES, Job, _read_exactly, _write_frame


def _address_space() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _parse(job: Job) -> bytes:
    resource.setrlimit(resource.RLIMIT_CPU, (int(_cpu_used()) + job.cpu_seconds, resource.RLIM_INFINITY))
    resource.setrlimit(resource.RLIMIT_AS, (_address_space() + job.memory_bytes, resource.RLIM_INFINITY))
    try:
        result: tuple = ("ok", document_from_bytes(job.filename, job.data, job.document_id, job.metadata, job.source_path, job.limits))
    except RagError as exc:
        result = ("error", type(exc), str(exc))
    except MemoryError:
        result = ("error", DocumentTooLarge, f"parsing needed more than {job.memory_bytes // 2**20} MB of memory (RAG_MAX_PARSE_MEMORY_MB)")
    except RecursionError:
        result = ("error", UnsupportedDocument, "the file is nested too deeply to parse")
    except Exception as exc:  # noqa: BLE001 - a parser library's own failure on a hostile file
        result = ("error", UnsupportedDocument, f"cannot parse the file: {type(exc).__name__}: {exc}"[:500])
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    payload = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
    most = OUTPUT_BYTES_PER_INPUT_BYTE * len(job.data) + OUTPUT_SLACK_BYTES
    if len(payload) > most:
        payload = pickle.dumps(("error", DocumentTooLarge, f"the parsed document ({len(payload)} bytes) is larger than {most} bytes"))
    return payload


def serve_jobs() -> None:
    """The worker's loop (``python -m rag.parse_pool``): jobs in on stdin, results out on the
    original stdout; fd 1 is pointed at stderr so that nothing a library prints can corrupt a
    frame."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C stops the parent, which ends us
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU dumps core by default: not gigabytes of it
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    jobs = sys.stdin.buffer
    while True:
        try:
            (size,) = _FRAME.unpack(_read_exactly(jobs, _FRAME.size))
            job = pickle.loads(_read_exactly(jobs, size))
        except EOFError:
            return  # the parent is gone
        _write_frame(out, _parse(job))


if __name__ == "__main__":
    serve_jobs()
