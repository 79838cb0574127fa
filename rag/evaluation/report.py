"""``rag eval --report DIR``: a Markdown report, per-question diagnostics and PNG plots."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rag.evaluation.benchmarks import Evaluation, missing_documents_note

DIAGNOSTICS_FILE = "diagnostics.jsonl"
REPORT_FILE = "report.md"
METRICS_FILE = "metrics.json"
PLOTS = {"recall": "recall_at_k.png", "calibration": "calibration.png", "latency": "latency.png"}
# A candidate counts as correct in the calibration plot when its token F1 reaches this (the
# span reader's calibration target).
CORRECT_F1 = 0.5
SHOWN_FAILURES = 40


def write_report(folder: Path, evaluation: Evaluation, command: str = "") -> dict[str, Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {"metrics": folder / METRICS_FILE, "diagnostics": folder / DIAGNOSTICS_FILE, "report": folder / REPORT_FILE}
    files["metrics"].write_text(json.dumps(evaluation.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with files["diagnostics"].open("w", encoding="utf-8") as fh:
        for record in evaluation.records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    files.update(write_plots(folder, evaluation))
    files["report"].write_text(markdown(evaluation, command), encoding="utf-8")
    return files


def write_plots(folder: Path, evaluation: Evaluation) -> dict[str, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: dict[str, Path] = {}
    title = _title(evaluation)

    fig, ax = plt.subplots(figsize=(6, 4))
    if evaluation.recall_curve:
        ks = sorted(evaluation.recall_curve)
        ax.plot(ks, [evaluation.recall_curve[k] for k in ks], marker="o")
        ax.set_ylim(0, 1.02)
    else:
        ax.text(0.5, 0.5, "no retrieval in this mode", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("k (passages)" if evaluation.kind != "beir" else "k (documents)")
    ax.set_ylabel("recall@k")
    ax.set_title(f"Recall@k: {title}", fontsize=9)
    ax.grid(alpha=0.3)
    written["recall_plot"] = _save(fig, folder / PLOTS["recall"])

    fig, ax = plt.subplots(figsize=(6, 4))
    bins = calibration_bins(evaluation.scores)
    if bins:
        centers = [b["mean_score"] for b in bins]
        ax.plot(centers, [b["correct"] for b in bins], marker="o", label=f"share with F1 >= {CORRECT_F1}")
        ax.plot(centers, [b["mean_f1"] for b in bins], marker="s", alpha=0.6, label="mean F1")
        for b in bins:
            ax.annotate(str(b["count"]), (b["mean_score"], b["correct"]), fontsize=7, xytext=(2, 4), textcoords="offset points")
        low, high = min(centers + [0.0]), max(centers + [1.0])
        ax.plot([low, high], [low, high], "k--", lw=0.8, label="perfect calibration")
        threshold = evaluation.config.get("threshold")
        if threshold is not None:
            ax.axvline(threshold, color="red", lw=0.8, label=f"threshold {threshold:.3g}")
        ax.legend(fontsize=7)
        ax.set_ylim(0, 1.02)
    else:
        ax.text(0.5, 0.5, "no answer scores in this mode", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("best candidate's score")
    ax.set_ylabel("observed")
    ax.set_title(f"Score calibration: {title}", fontsize=9)
    ax.grid(alpha=0.3)
    written["calibration_plot"] = _save(fig, folder / PLOTS["calibration"])

    fig, ax = plt.subplots(figsize=(6, 4))
    if evaluation.latencies:
        ax.hist(evaluation.latencies, bins=40)
        for key, style in (("p50_ms", "--"), ("p95_ms", ":")):
            value = evaluation.metrics.get(key)
            if value is not None:
                ax.axvline(value, color="k", ls=style, lw=0.8, label=f"{key[:3]} {value:.1f} ms")
        ax.legend(fontsize=7)
    ax.set_xlabel("ms per question (batched runs: batch time / batch size)")
    ax.set_ylabel("questions")
    ax.set_title(f"Latency: {title}", fontsize=9)
    written["latency_plot"] = _save(fig, folder / PLOTS["latency"])
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def calibration_bins(scores: list[tuple[float, float]], n_bins: int = 10) -> list[dict]:
    """Equal-count bins of (score, F1) pairs: mean score, share correct, mean F1, count."""
    if not scores:
        return []
    data = np.array(sorted(scores), dtype=float)
    out = []
    for chunk in np.array_split(data, min(n_bins, len(data))):
        if len(chunk):
            out.append({
                "mean_score": float(chunk[:, 0].mean()),
                "correct": float((chunk[:, 1] >= CORRECT_F1).mean()),
                "mean_f1": float(chunk[:, 1].mean()),
                "count": int(len(chunk)),
            })
    return out


def _title(evaluation: Evaluation) -> str:
    c = evaluation.config
    name = Path(str(c.get("dataset", ""))).name or evaluation.kind
    parts = [name, c.get("mode", "")]
    if c.get("reader"):
        parts.append(f"reader {c['reader']}")
    return ", ".join(p for p in parts if p)


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


def markdown(evaluation: Evaluation, command: str = "") -> str:
    m, c = evaluation.metrics, evaluation.config
    lines = [f"# Evaluation report: {_title(evaluation)}", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += ["## Metrics", "", "| metric | value |", "|---|---|"]
    for key, value in m.items():
        if key != "categories":
            lines.append(f"| {key} | {_fmt(value)} |")
    lines += ["", "EM, F1, has_answer_*, no_answer_accuracy and best_* are 0-100 (SQuAD's official definitions;"
              " an abstention on an unanswerable question scores 100); recall, mrr, ndcg and citation_accuracy are 0-1.", ""]
    if c.get("documents_not_in_index"):
        lines += [f"> {line.strip()}  " for line in missing_documents_note(c)] + [""]
    if m.get("categories"):
        lines += ["## Outcomes", "", "| category | questions |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in m["categories"].items()]
        lines.append("")
    lines += ["## Configuration", "", "| setting | value |", "|---|---|"]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in c.items()]
    if evaluation.timings_s:
        lines.append(f"| wall time | {', '.join(f'{k} {v:.1f} s' for k, v in evaluation.timings_s.items())} |")
    lines += ["", "## Plots", ""]
    lines += [f"![{name}]({file})" for name, file in PLOTS.items()]
    lines += ["", f"## Failures (first {SHOWN_FAILURES}; all questions in {DIAGNOSTICS_FILE})", ""]
    failures = [r for r in evaluation.records if r.get("category") not in ("correct", None)]
    if evaluation.kind == "beir":
        lines += ["| id | query | relevant | top retrieved | ndcg@10 |", "|---|---|---|---|---|"]
        for r in failures[:SHOWN_FAILURES]:
            lines.append(f"| {r['id']} | {_cell(r['question'])} | {', '.join(r['relevant'][:3])} | {', '.join(r['retrieved'][:3])} | {_fmt(r.get('ndcg@10'))} |")
    else:
        lines += ["| id | category | question | gold | prediction (candidate, score) | first relevant rank |", "|---|---|---|---|---|---|"]
        for r in failures[:SHOWN_FAILURES]:
            gold = " / ".join(r["answers"][:2]) or "(unanswerable)"
            pred = r["prediction"] or f"(abstained; {r['candidate'] or 'none'})"
            rank = (r["relevant_ranks"] or [None])[0] if r.get("relevant_ranks") is not None else "n/a"
            lines.append(f"| {r['id']} | {r['category']} | {_cell(r['question'])} | {_cell(gold)} | {_cell(pred)}, {_fmt(r['score'])} | {_fmt(rank)} |")
    if not failures:
        lines.append("None.")
    return "\n".join(lines) + "\n"


def _cell(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"
