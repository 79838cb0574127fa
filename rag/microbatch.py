"""Micro-batching: concurrent callers' work merged into one call of a batch function.

``MicroBatcher(fn).submit(items)`` returns ``fn(items)``'s results for ``items``, but while one
call of ``fn`` runs, the items submitted by other threads wait in a queue, and the next call
takes all of them at once (up to ``max_items``).  There is no timer: a lone request is run at
once (no added latency when idle), and under load the batch grows to what arrived during the
previous call.  No thread of its own: the first waiting caller runs the next batch (leader /
follower), so a batcher costs nothing when unused.

The pipeline can use it for the reader (``rag.pipeline.MICRO_BATCH``), which is ~90% of an
answer's time on CPU: 8 concurrent ``/v1/ask`` requests become one ``read_batch`` over all their
passages.  On 2 cores it did not pay (server CPU per request 59-63 ms without, 62-69 ms with;
eval/reader/microbatch.json), so it is off there; answers are the same either way.
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class _Job(Generic[T, R]):
    __slots__ = ("items", "results", "error", "wake", "done", "lead")

    def __init__(self, items: list[T]):
        self.items = items
        self.results: list[R] = []
        self.error: BaseException | None = None
        self.wake = threading.Event()
        self.done = False
        self.lead = False


class MicroBatcher(Generic[T, R]):
    """Merge concurrent ``submit`` calls into calls of ``fn`` (``len(fn(xs)) == len(xs)``)."""

    def __init__(self, fn: Callable[[list[T]], Sequence[R]], max_items: int = 64):
        self.fn = fn
        self.max_items = max_items
        self._lock = threading.Lock()
        self._queue: deque[_Job[T, R]] = deque()
        self._busy = False
        #: Sizes (in items) of the batches run so far, for tests and measurements.
        self.batch_sizes: list[int] = []

    def submit(self, items: Sequence[T]) -> list[R]:
        job: _Job[T, R] = _Job(list(items))
        if not job.items:
            return []
        with self._lock:
            self._queue.append(job)
            if not self._busy:
                self._busy = True
                job.lead = True
        if not job.lead:
            job.wake.wait()
        if not job.done:
            self._run_batch()  # this caller leads: its job is first in the queue
        if job.error is not None:
            raise job.error
        return job.results

    def _run_batch(self) -> None:
        with self._lock:
            batch = [self._queue.popleft()]
            size = len(batch[0].items)
            while self._queue and size + len(self._queue[0].items) <= self.max_items:
                size += len(self._queue[0].items)
                batch.append(self._queue.popleft())
        try:
            flat = [x for job in batch for x in job.items]
            results = list(self.fn(flat))
            if len(results) != len(flat):
                raise RuntimeError(f"the batch function returned {len(results)} results for {len(flat)} items")
            self.batch_sizes.append(len(flat))
            pos = 0
            for job in batch:
                job.results = results[pos : pos + len(job.items)]
                pos += len(job.items)
        except BaseException as exc:  # noqa: BLE001 - every caller of the batch gets the error
            for job in batch:
                job.error = exc
        finally:
            nxt: _Job[T, R] | None = None
            with self._lock:
                for job in batch:
                    job.done = True
                if self._queue:
                    nxt = self._queue[0]
                    nxt.lead = True
                else:
                    self._busy = False
            for job in batch:
                job.wake.set()
            if nxt is not None:
                nxt.wake.set()
