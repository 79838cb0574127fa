"""fp32 vs int8 (dynamic quantisation of Linear layers) reader F1 on a SQuAD v1.1 dev sample, CPU.

    python eval/reader/int8_eval.py MODEL_DIR DEV_JSON [n=1000] [threads=2]
"""
import json
import random
import sys
import time

import torch

from rag.reading.span import SpanReader, predict_pairs
from rag.training.data import load_eval_squad
from rag.training.evaluation import v1_scores

model_dir, dev = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
torch.set_num_threads(threads)
examples = load_eval_squad(dev)
examples = random.Random(0).sample(examples, min(n, len(examples)))
results = {}
for q in ("none", "int8"):
    reader = SpanReader(model_dir, quantize=q)
    reader.warm_up()
    t0 = time.time()
    cands = predict_pairs(reader._model, reader._tokenizer, [e.question for e in examples], [e.context for e in examples],
                          max_seq_len=384, doc_stride=128, max_answer_tokens=30, batch_size=16)
    preds = [(e.context[c[0].start:c[0].end] if c else "", 0.0, c) for e, c in zip(examples, cands)]
    results[q] = {**v1_scores(examples, preds), "seconds": round(time.time() - t0, 1), "threads": threads}
    print(q, json.dumps(results[q]), flush=True)
