"""Time per character of parsing + chunking on adversarial shapes, at two sizes each.

A linear step costs about the same per character at both sizes; a quadratic one costs ~10x
more per character at the 10x size.  Writes eval/bench/ingest_shapes.json.

    python eval/bench/ingest_shapes.py
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from rag.chunking import make_passages, split_paragraphs
from rag.sentences import sentence_spans
from rag.ingest import document_from_bytes

SHAPES = {
    "spaces run (one line)": lambda n: ("what is x" + " " * n + "y").encode(),
    "single token": lambda n: ("Start. " + "X" * n + ". End.").encode(),
    "paragraphs sharing a phrase": lambda n: "\n\n".join(
        f"The shared opening phrase of every paragraph then item {i} differs." for i in range(n // 60)
    ).encode(),
    "tiny html paragraphs": lambda n: "".join(f"<p>w{i}</p>" for i in range(n // 12)).encode(),
    "hard-wrapped manual": lambda n: "\n".join(
        ("       --option-%d=VALUE\n              describes what the option does in a wrapped line\n" % i) for i in range(n // 90)
    ).encode(),
}
SUFFIX = {"tiny html paragraphs": "x.html"}


def run(data: bytes, name: str) -> float:
    started = time.perf_counter()
    document = document_from_bytes(name, data)
    paragraphs = split_paragraphs(document)
    make_passages(paragraphs, max_words=180)
    for paragraph in paragraphs[:2000]:
        sentence_spans(paragraph.text)
    return time.perf_counter() - started


def main() -> None:
    for name in ("warm.txt", "warm.html", "warm.md"):  # imports and first-call costs are not the shape's
        run(b"Warm up. One paragraph.", name)
    rows = []
    for shape, make in SHAPES.items():
        for size in (90_000, 900_000):
            data = make(size)
            seconds = run(data, SUFFIX.get(shape, "x.txt"))
            rows.append({"shape": shape, "bytes": len(data), "seconds": round(seconds, 3), "us_per_char": round(seconds / len(data) * 1e6, 3)})
            print(rows[-1])
    out = Path(__file__).with_name("ingest_shapes.json")
    out.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
