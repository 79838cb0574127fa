"""Resumable training for ``rag train-reader``: checkpoints, a replayable batch order, stop signals.

A run writes ``run_dir/checkpoint.pt`` (model, optimiser, scheduler, step, history, RNG state)
every ``save_every`` steps and when it is stopped (SIGINT / SIGTERM: it finishes the step, saves,
and exits), atomically (temporary file, then rename), so a killed run loses at most
``save_every`` steps.  ``--resume`` continues from it with the same batch order: every epoch's
order is a function of (seed, epoch), so step ``s`` is the same batch whether or not the run was
interrupted before it.  Tokenised windows are cached in ``run_dir/features.pkl`` (keyed by the
data and window settings), so a resumed run does not tokenise 100k+ questions again.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import random
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

CHECKPOINT = "checkpoint.pt"
FEATURES = "features.pkl"
# Settings that must not change between a run and its resumption (the batch order and the
# learning-rate schedule depend on them).
RESUME_KEYS = ("max_seq_len", "doc_stride", "batch_size", "lr", "epochs", "max_questions", "neg_ratio", "hard_negatives",
               "seed", "max_steps", "base_model", "squad_rest", "techdocs", "bucket")


# Length buckets: windows are sorted by length within pools of this many batches, so a batch's
# windows need little padding, and the batches are then shuffled (short technical paragraphs
# padded to a SQuAD window's 256 tokens wasted most of a step's compute).
BUCKET_POOL = 50


def epoch_order(n_items: int, batch_size: int, seed: int, epoch: int, lengths: Sequence[int] | None = None) -> list[list[int]]:
    """The batches (lists of feature rows) of ``epoch``; full batches only.  With ``lengths``,
    each batch holds windows of similar length (sorted within pools of ``BUCKET_POOL`` batches)."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(n_items))
    rng.shuffle(order)
    if lengths is not None:
        pool = batch_size * BUCKET_POOL
        order = [i for lo in range(0, n_items, pool) for i in sorted(order[lo:lo + pool], key=lambda j: lengths[j])]
    batches = [order[lo : lo + batch_size] for lo in range(0, n_items - batch_size + 1, batch_size)]
    if lengths is not None:
        rng.shuffle(batches)
    return batches


def batches_from(n_items: int, batch_size: int, seed: int, step: int, lengths: Sequence[int] | None = None) -> Iterator[tuple[int, list[int]]]:
    """(global step, rows) from ``step`` on, epoch after epoch (the caller stops)."""
    per_epoch = max(1, n_items // batch_size)
    epoch, skip = divmod(step, per_epoch)
    while True:
        for i, rows in enumerate(epoch_order(n_items, batch_size, seed, epoch, lengths)):
            if i >= skip:
                yield epoch * per_epoch + i, rows
        epoch, skip = epoch + 1, 0


def features_key(cfg: dict, data_info: dict) -> str:
    wanted = {k: cfg.get(k) for k in ("max_seq_len", "doc_stride", "max_questions", "neg_ratio", "hard_negatives", "seed",
                                      "question_swap", "heldout_fraction", "base_model", "squad_rest", "techdocs")}
    wanted["data"] = {k: data_info.get(k) for k in ("train_questions", "train_negatives")}
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:16]


def cached_features(run_dir: Path, key: str, build):
    path = Path(run_dir) / FEATURES
    if path.is_file():
        with path.open("rb") as fh:
            stored_key, feats = pickle.load(fh)
        if stored_key == key:
            return feats, True
    feats = build()
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:
        pickle.dump((key, feats), fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return feats, False


def save_checkpoint(run_dir: Path, model, optimizer, scheduler, step: int, cfg: dict, history: list) -> Path:
    import torch

    path = Path(run_dir) / CHECKPOINT
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "step": step, "config": {k: cfg.get(k) for k in RESUME_KEYS}, "history": history,
                "torch_rng": torch.get_rng_state()}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(run_dir: Path, model, optimizer, scheduler, cfg: dict) -> tuple[int, list]:
    """Restore the states in place; returns (step, history).  Refuses a checkpoint of other settings."""
    import torch

    state = torch.load(Path(run_dir) / CHECKPOINT, map_location="cpu", weights_only=False)
    mismatched = {k: (state["config"].get(k), cfg.get(k)) for k in RESUME_KEYS if state["config"].get(k) != cfg.get(k)}
    if mismatched:
        raise ValueError(f"the checkpoint in {run_dir} was made with other settings (checkpoint, now): {mismatched}")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"]), list(state["history"])


SECONDS_FILE = "train_seconds.json"


def record_seconds(run_dir: Path, step: int, seconds: float) -> None:
    """Training time of the whole run so far (all sessions), written beside each checkpoint."""
    (Path(run_dir) / SECONDS_FILE).write_text(json.dumps({"step": step, "seconds": round(seconds, 3)}))


def trained_seconds(run_dir: Path) -> float:
    """Training time of earlier sessions of this run (0 when none was recorded)."""
    path = Path(run_dir) / SECONDS_FILE
    return float(json.loads(path.read_text())["seconds"]) if path.is_file() else 0.0


class StopFlag:
    """Set by SIGINT/SIGTERM while training, so the loop can save and exit between steps."""

    def __init__(self):
        self.stop = False
        self._previous = {}

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: no handlers, the run can still be killed
                pass
        return self

    def _handle(self, signum, frame) -> None:
        self.stop = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
