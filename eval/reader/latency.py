"""Reader latency on CPU: p50/p90 of SpanReader.read over 5 passages of ~150 word pieces.

    python eval/reader/latency.py MODEL_DIR [runs=50] [threads=2]
Prints fp32 and int8 (dynamic quantisation of Linear layers) timings.
"""
import statistics
import sys
import time

import torch

from rag.reading.span import SpanReader
from rag.types import Paragraph, Passage, RetrievedPassage

model = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 50
threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
torch.set_num_threads(threads)
base = ("The North Atlantic Treaty Organization was founded in 1949 by twelve countries, and its first "
        "Secretary General was Lord Ismay, who served from 1952 to 1957 in Paris. ")
texts = [(base * 4)[: 600 + 37 * i] for i in range(5)]  # ~120-150 word pieces each
passages = []
for i, t in enumerate(texts):
    para = Paragraph("doc", i, t, 0, len(t))
    passages.append(RetrievedPassage(Passage(i, "doc", i, t, 0, 0), para, 1.0 / (i + 1), rank=i))
for q in ("none", "int8"):
    reader = SpanReader(model, quantize=q)
    reader.warm_up()
    tokens = [len(reader._tokenizer(t)["input_ids"]) for t in texts]
    for _ in range(5):
        reader.read("Who was NATO's first Secretary General?", passages)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = reader.read("Who was NATO's first Secretary General?", passages)
        times.append(1000 * (time.perf_counter() - t0))
    times.sort()
    print(f"quantize={q} threads={threads} tokens/passage={tokens} p50={statistics.median(times):.1f}ms "
          f"p90={times[int(0.9 * len(times))]:.1f}ms best={out.spans[0].text!r} score={out.spans[0].score:.3f}", flush=True)
