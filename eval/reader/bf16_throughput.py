"""Training-step throughput of the span reader on this CPU: fp32 against bf16 autocast, padding
to the batch's longest window with and without length buckets, and a frozen embedding matrix.

    python eval/reader/bf16_throughput.py --techdocs /work/techdocs/questions.jsonl --steps 6 --rounds 2

The same batches (16 windows of at most 256 tokens, drawn from SQuAD train and the technical
questions as ``rag train-reader`` mixes them) are timed in every setting, settings alternating
step by step so that a busy shared machine slows each alike; each step's CPU seconds are
recorded too (the work itself, whatever else runs).  Writes
eval/reader/bf16_throughput.json (median seconds per step and windows/s per setting).
"""
from __future__ import annotations

import json
import os
import random
import statistics
import time
from pathlib import Path

import torch
import typer

from rag.reading.qa_model import load_qa_model
from rag.reading.span import default_reader_path
from rag.training import checkpoint as ck
from rag.training.data import flatten, load_squad_articles
from rag.training.techdocs import load_techdocs
from rag.training.train import _collate, adamw, build_features


def _step(model, opt, batch, amp) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of one optimiser step."""
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.autocast(device_type="cpu", dtype=amp or torch.float32, enabled=amp is not None):
        loss = model(**batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0, time.process_time() - c0


def main(
    data_dir: Path = typer.Option(Path("../shared/data")),
    techdocs: Path = typer.Option(Path("/work/techdocs/questions.jsonl")),
    steps: int = typer.Option(6),
    rounds: int = typer.Option(2),
    out: Path = typer.Option(Path("eval/reader/bf16_throughput.json")),
) -> None:
    rng = random.Random(0)
    squad = flatten(load_squad_articles(data_dir / "squad-v1.1-train-partial/train-slice-44-articles.json", "squad_train"))
    tech = flatten(load_techdocs(techdocs)[0]) if techdocs.is_file() else []
    examples = rng.sample(squad, 800) + (rng.sample(tech, min(800, len(tech))) if tech else [])
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(default_reader_path()))
    feats = build_features(tokenizer, examples, 256, 96)
    lengths = [len(f[0]) for f in feats]
    plain = ck.epoch_order(len(feats), 16, 0, 0)[:steps]
    bucketed = ck.epoch_order(len(feats), 16, 0, 0, lengths)[:steps]
    settings = {"fp32": (None, plain, False), "bf16": (torch.bfloat16, plain, False),
                "bf16+buckets": (torch.bfloat16, bucketed, False), "bf16+buckets+frozen embeddings": (torch.bfloat16, bucketed, True)}
    padded_length = {name: statistics.mean(max(lengths[i] for i in rows) for rows in batches) for name, (_a, batches, _f) in settings.items()}
    # One model and optimiser per setting; their steps interleave (step i of every setting, then
    # step i + 1), so a load that comes and goes on the shared machine slows each alike.
    runs = {}
    for name, (amp, batches, frozen) in settings.items():
        copy = load_qa_model(str(default_reader_path()))
        copy.get_input_embeddings().weight.requires_grad_(not frozen)
        copy.train()
        opt = adamw([p for p in copy.parameters() if p.requires_grad], 1e-5)
        _step(copy, opt, _collate([feats[i] for i in batches[0]], 0), amp)  # warm-up (allocations, oneDNN kernels)
        runs[name] = (copy, opt)
    times: dict[str, list[float]] = {name: [] for name in settings}
    cpu: dict[str, list[float]] = {name: [] for name in settings}
    for _ in range(rounds):
        for i in range(steps):
            for name, (amp, batches, _frozen) in settings.items():
                wall, used = _step(*runs[name], _collate([feats[j] for j in batches[i]], 0), amp)
                times[name].append(wall)
                cpu[name].append(used)
    result = {"threads": torch.get_num_threads(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
              "avx512_bf16": torch.cpu._is_avx512_bf16_supported(), "steps_per_round": steps, "rounds": rounds,
              "load_average_after": round(os.getloadavg()[0], 2),
              "settings": {name: {"median_s_per_step": round(statistics.median(t), 3), "windows_per_s": round(16 * len(t) / sum(t), 2),
                                  "median_cpu_s_per_step": round(statistics.median(cpu[name]), 3),
                                  "mean_padded_length": round(padded_length[name], 1)} for name, t in times.items()}}
    base_cpu = sum(cpu["fp32"]) / len(cpu["fp32"])
    for values in result["settings"].values():
        values["speedup_vs_fp32"] = round(values["windows_per_s"] / result["settings"]["fp32"]["windows_per_s"], 2)
    for name, values in result["settings"].items():
        values["cpu_speedup_vs_fp32"] = round(base_cpu / (sum(cpu[name]) / len(cpu[name])), 2)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    typer.run(main)
