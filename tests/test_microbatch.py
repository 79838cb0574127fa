"""MicroBatcher: concurrent submits merge into one call, results go back to their callers."""
from __future__ import annotations

import threading
import time

import pytest

from rag.microbatch import MicroBatcher
from rag.api.schemas import ask_response


def test_lone_call_runs_at_once_with_its_own_items():
    calls = []
    batcher = MicroBatcher(lambda xs: calls.append(list(xs)) or [x * 10 for x in xs])
    assert batcher.submit([1, 2]) == [10, 20]
    assert batcher.submit([]) == []
    assert calls == [[1, 2]] and batcher.batch_sizes == [2]


def test_concurrent_submits_share_calls_and_get_their_own_results():
    gate = threading.Event()
    calls: list[list[int]] = []

    def slow(xs):
        calls.append(list(xs))
        if len(calls) == 1:
            gate.wait(5)  # hold the first call until every other caller has queued
        return [x * x for x in xs]

    batcher = MicroBatcher(slow)
    results: dict[int, list[int]] = {}

    def client(i):
        results[i] = batcher.submit([i, i + 100])

    first = threading.Thread(target=client, args=(0,))
    first.start()
    while not calls:
        time.sleep(0.001)
    others = [threading.Thread(target=client, args=(i,)) for i in range(1, 8)]
    for t in others:
        t.start()
    while len(batcher._queue) < 7:
        time.sleep(0.001)
    gate.set()
    for t in [first, *others]:
        t.join(5)
    assert results == {i: [i * i, (i + 100) ** 2] for i in range(8)}
    # One call for the first client, one for the seven that queued behind it.
    assert len(calls) == 2 and sorted(calls[1]) == sorted(x for i in range(1, 8) for x in (i, i + 100))


def test_max_items_caps_a_batch_but_never_splits_a_job():
    gate = threading.Event()
    sizes = []

    def fn(xs):
        sizes.append(len(xs))
        if len(sizes) == 1:
            gate.wait(5)
        return xs

    batcher = MicroBatcher(fn, max_items=4)
    threads = [threading.Thread(target=batcher.submit, args=([0] * 3,)) for _ in range(4)]
    threads[0].start()
    while not sizes:
        time.sleep(0.001)
    for t in threads[1:]:
        t.start()
    while len(batcher._queue) < 3:
        time.sleep(0.001)
    gate.set()
    for t in threads:
        t.join(5)
    assert sizes == [3, 3, 3, 3]  # 3 + 3 > 4: each job alone
    assert batcher.submit([1] * 9) == [1] * 9  # a job larger than the cap still runs


def test_an_error_reaches_every_caller_of_the_batch_and_the_batcher_recovers():
    def fn(xs):
        if "bad" in xs:
            raise ValueError("boom")
        return xs

    batcher = MicroBatcher(fn)
    with pytest.raises(ValueError, match="boom"):
        batcher.submit(["bad"])
    assert batcher.submit(["ok"]) == ["ok"]
    wrong = MicroBatcher(lambda xs: xs[:-1])
    with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
        wrong.submit([1, 2])


def test_pipeline_answers_are_the_same_with_micro_batched_reading(fake_pipeline):
    questions = ["Who was NATO's first Secretary General?", "Where was the 2024 NATO summit held?",
                 "Which countries joined the summit?", "What is the Indo-Pacific?"] * 2

    def body(result):
        out = ask_response(result)
        out.pop("timings_ms")
        return out

    plain = [body(fake_pipeline.ask(q)) for q in questions]
    fake_pipeline._reading = MicroBatcher(fake_pipeline._read_items)
    results: dict[int, dict] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, body(fake_pipeline.ask(questions[i]))))
               for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert [results[i] for i in range(len(questions))] == plain
    assert sum(fake_pipeline._reading.batch_sizes) == len(questions)
