"""Does bf16 autocast train the span reader as well as fp32?  Two short runs on identical batches.

    python eval/reader/bf16_equivalence.py --run-dir /work/runs/reader-19 --steps 80 --heldout 600

Both runs start from the shipped reader, take the same ``--steps`` batches of the run's cached
training windows (``run_dir/features.pkl``, length-bucketed as ``rag train-reader`` orders them)
at the run's learning rate (linear decay over the short run), one with fp32 and one with
bf16 autocast (fp32 master weights either way), and are scored on the same held-out answerable
questions (reader mode, no threshold; half technical documents, half prose, as the calibration
samples them).  Writes eval/reader/bf16_equivalence.json: held-out EM/F1 of each, their
difference, and seconds per step.
"""
from __future__ import annotations

import json
import pickle
import random
import time
from pathlib import Path

import torch
import typer

from rag.reading.qa_model import load_qa_model
from rag.reading.span import Calibration, default_reader_path
from rag.training import checkpoint as ck
from rag.training import evaluation as te
from rag.training.data import flatten, load_training_articles, split_heldout
from rag.training.techdocs import load_techdocs
from rag.training.train import _collate


def _train(feats, batches, lr: float, amp) -> tuple[torch.nn.Module, float]:
    model = load_qa_model(str(default_reader_path()))
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: max(0.0, 1 - s / len(batches)))
    t0 = time.perf_counter()
    for rows in batches:
        with torch.autocast(device_type="cpu", dtype=amp or torch.float32, enabled=amp is not None):
            loss = model(**_collate([feats[i] for i in rows], 0)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    return model, (time.perf_counter() - t0) / len(batches)


def main(
    run_dir: Path = typer.Option(Path("/work/runs/reader-19")),
    data_dir: Path = typer.Option(Path("../shared/data")),
    steps: int = typer.Option(80),
    heldout: int = typer.Option(600),
    out: Path = typer.Option(Path("eval/reader/bf16_equivalence.json")),
) -> None:
    cfg = json.loads((run_dir / "train.jsonl").read_text().splitlines()[0])["config"]
    with (run_dir / ck.FEATURES).open("rb") as fh:
        _key, feats = pickle.load(fh)
    lengths = [len(f[0]) for f in feats]
    batches = ck.epoch_order(len(feats), cfg["batch_size"], cfg["seed"] + 1, 0, lengths)[:steps]
    articles = load_training_articles(data_dir, squad_rest=cfg["squad_rest"])
    _train_articles, held = split_heldout(articles, cfg["heldout_fraction"], cfg["seed"])
    tech_articles, _swaps = load_techdocs(Path(cfg["techdocs"]))
    _tech_train, tech_held = split_heldout(tech_articles, cfg["heldout_fraction"], cfg["seed"])
    examples = te.stratified(flatten(held) + flatten(tech_held), heldout, random.Random(5))
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(default_reader_path()))
    result: dict = {"steps": steps, "batch_size": cfg["batch_size"], "lr": cfg["lr"], "heldout_questions": len(examples),
                    "threads": torch.get_num_threads()}
    for name, amp in (("fp32", None), ("bf16", torch.bfloat16)):
        model, per_step = _train(feats, batches, cfg["lr"], amp)
        preds = te.reader_predictions(model, tokenizer, examples, cfg, "cpu", None, Calibration())
        scores = te.v1_scores(examples, preds)
        result[name] = {"heldout_em": round(scores["exact"], 2), "heldout_f1": round(scores["f1"], 2), "seconds_per_step": round(per_step, 2)}
        print(json.dumps({name: result[name]}), flush=True)
    result["f1_difference_bf16_minus_fp32"] = round(result["bf16"]["heldout_f1"] - result["fp32"]["heldout_f1"], 2)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    typer.run(main)
