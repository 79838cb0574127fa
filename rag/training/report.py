"""Export of a trained span reader: fp16 safetensors, tokenizer, calibration and model card."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from rag.reading.span import CALIBRATION_FILE

KEEP = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
        "vocab.txt", CALIBRATION_FILE, "README.md", "metrics.json")


def export_model(model, tokenizer, calibration, metrics: dict, output_dir: Path) -> None:
    """Write the shipped folder; fp16 weights (~45 MB for MiniLM-L6) keep it under 50 MB."""
    import copy

    import torch

    output_dir = Path(output_dir)
    if output_dir.exists():
        for child in output_dir.iterdir():
            if child.is_file() and child.name in KEEP:
                child.unlink()
            elif child.is_dir() and child.name != "__pycache__":
                shutil.rmtree(child)
    output_dir.mkdir(parents=True, exist_ok=True)
    half = copy.deepcopy(model).to("cpu", dtype=torch.float16)
    half.save_pretrained(output_dir, safe_serialization=True)
    tokenizer.save_pretrained(output_dir)
    cal = {**calibration.to_dict(), "measurement": metrics.get("heldout_v2", {}),
           "fit": metrics.get("calibration", {})}
    (output_dir / CALIBRATION_FILE).write_text(json.dumps(cal, indent=2) + "\n")
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (output_dir / "README.md").write_text(model_card(metrics))


def _fmt(value, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "n/a"


def model_card(m: dict) -> str:
    cfg, data, cal = m["config"], m["data"], m["calibration"]
    v1 = m.get("squad_v1.1_dev", {}).get("v1_always_answer", {})
    v2 = m.get("squad_v2.0_dev", {}).get("v2_at_heldout_threshold", {})
    v2o = m.get("squad_v2.0_dev", {}).get("v2_at_dev_oracle_threshold_diagnostic", {})
    hv2 = m["heldout_v2"]
    ret = m["heldout_retrieval_top5"]
    lines = [
        "# Span reader: all-MiniLM-L6-v2 fine-tuned for extractive QA",
        "",
        "Extractive question answering (SQuAD 2.0 style, with no-answer) for the `rag` service's",
        "`SpanReader` (`rag/reading/span.py`). Weights are fp16 safetensors; load with",
        "`AutoModelForQuestionAnswering.from_pretrained(folder)` (BertForQuestionAnswering).",
        "",
        "## Data",
        f"- Base model: {cfg['base_model']} (BertModel, 6 layers, 384 hidden), "
        f"{'its trained `qa_outputs` head' if cfg.get('preset') == 'continue' else 'new `qa_outputs` head'}.",
        f"- Training questions: {data['train_questions']} answerable ({', '.join(f'{k}: {v}' for k, v in data['by_source'].items())}),",
        f"  plus {data['train_negatives']} unanswerable ({', '.join(f'{k}: {v}' for k, v in data['negative_kinds'].items())}):",
        "  `answer_removed` = gold paragraph without the answer sentence(s); `other_paragraph` =",
        "  the most word-overlapping other paragraph of the same article (neither contains a gold answer);",
        "  `question_swap` = gold paragraph, question with one word it shares with the paragraph (a",
        "  capitalised word or number, else a content word) swapped for one the paragraph lacks;",
        "  SQuAD 2.0-style rule edits of the question on its own paragraph (`rag/training/negatives.py`):",
        "  `entity_swap` (a name from another paragraph of the same article), `number_swap`, `ordinal_swap`",
        "  (first/current/last...), `antonym_swap` (largest/smallest, won/lost...), `negation`.",
        f"- Sources: SQuAD v1.1 train ({'all 442 articles' if cfg.get('squad_rest') else '44-article slice'}), SQuADShifts new_wiki and reddit, QED / Natural",
        "  Questions shards. Never SQuAD dev (v1.1 or v2.0) or SciFact, which are test sets.",
        f"- Held out: {data['heldout_questions']} questions ({cfg['heldout_fraction']:.1%} of article/paragraph groups),",
        f"  plus one unanswerable each ({data['heldout_with_negatives']} in all): calibration and threshold only.",
        "",
        "## Recipe",
        f"- Preset `{cfg['preset']}`: max_seq_len {cfg['max_seq_len']}, doc_stride {cfg['doc_stride']}, batch {cfg['batch_size']},",
        f"  AdamW lr {cfg['lr']}, weight decay {cfg['weight_decay']}, {cfg['epochs']} epochs, {cfg['warmup']:.0%} linear warm-up then",
        f"  linear decay, grad-norm clip 1.0, seed {cfg['seed']}, negatives ratio {cfg['neg_ratio']}, {data['train_windows']} training windows.",
        f"- Start: {cfg['base_model']}; {m.get('steps', 'n/a')} optimiser steps (--max-steps {cfg.get('max_steps') or 'off'}),"
        f" hard-negative share {cfg.get('hard_negatives', 0)}"
        + (f"; cut short at step {cfg['cut_short_at_step']} (`--resume --finish`), the learning rate not yet decayed to 0."
           if cfg.get("cut_short_at_step") else "."),
        f"- Trained on {m['device']} in {_fmt(m['train_seconds'] / 60)} min (bf16 autocast on GPU).",
        f"- Reproduce: `rag train-reader --data-dir ../shared/data --preset {cfg['preset']} --lr {cfg['lr']} --epochs {cfg['epochs']}"
        f" --neg-ratio {cfg['neg_ratio']} --max-questions {cfg['max_questions']} --seed {cfg['seed']}"
        f"{' --max-steps ' + str(cfg['max_steps']) if cfg.get('max_steps') else ''}"
        f" --hard-negatives {cfg.get('hard_negatives', 0)}{'' if cfg.get('squad_rest', True) else ' --no-squad-rest'}"
        f"{'' if cfg.get('question_swap', True) else ' --no-question-swap'}`",
        "  (or `python -m rag.training ...`); log: `run_dir/train.jsonl`, all numbers: `metrics.json`.",
        "",
        "## Scores (reader mode: the gold paragraph is given)",
        f"- SQuAD v1.1 dev ({v1.get('n', 'n/a')} q): EM {_fmt(v1.get('exact'))}, F1 {_fmt(v1.get('f1'))}.",
        f"- SQuAD v2.0 dev ({v2.get('n', 'n/a')} q) at the shipped threshold: EM {_fmt(v2.get('exact'))}, F1 {_fmt(v2.get('f1'))},",
        f"  HasAns F1 {_fmt(v2.get('has_ans_f1'))}, NoAns accuracy {_fmt(v2.get('no_ans_acc'))}.",
        f"  (Diagnostic only, not used: the best threshold on v2.0 dev itself, {_fmt(v2o.get('threshold'), 3)}, would give F1 {_fmt(v2o.get('f1'))}.)",
        "",
        "## Score calibration and threshold",
        "- `score` = sigmoid(bias + w_margin*margin + w_gap*gap + w_rank*log1p(rank)): margin = span logit",
        "  minus the window's null ([CLS]) logit, gap = span logit minus the question's best span logit",
        "  (<= 0), rank = the passage's position in the retrieved list. Label: token F1 >= 0.5 with a gold.",
        f"- Fitted on {cal['rows']} held-out candidate spans (reader mode, and each held-out question over its",
        f"  BM25 top-5 held-out paragraphs): w_margin {_fmt(cal['w_margin'], 3)}, w_gap {_fmt(cal['w_gap'], 3)},",
        f"  w_rank {_fmt(cal['w_rank'], 3)}, bias {_fmt(cal['bias'], 3)}; ECE (10 bins) {_fmt(cal['ece_10bins'], 3)}.",
        f"- Threshold {_fmt(cal['threshold'], 3)}: maximises F1 in held-out real use, weighted as if"
        f" {cal.get('unanswerable_share', 0.5):.0%} of questions had no answer (answerable and rule-edited",
        f"  unanswerable questions over their BM25 top-{cal.get('real_use_k', 'n/a')} held-out paragraphs, scored as the service scores answers;",
        "  the unweighted figures, half and half, follow):",
        f"  F1 {_fmt(m.get('heldout_real_use', {}).get('f1'))}, HasAns F1 {_fmt(m.get('heldout_real_use', {}).get('has_ans_f1'))},"
        f" NoAns accuracy {_fmt(m.get('heldout_real_use', {}).get('no_ans_acc'))}.",
        f"- Reader mode on the held-out slice at that threshold: F1 {_fmt(hv2['f1'])}, HasAns F1 {_fmt(hv2['has_ans_f1'])},"
        f" NoAns accuracy {_fmt(hv2['no_ans_acc'])}.",
        f"- Held-out open-book simulation (BM25 top-5, {ret['questions']} q) at that threshold: answered {_fmt(ret['answered_pct'])}%,",
        f"  F1 when answered {_fmt(ret['f1_when_answered'])}.",
        "",
        "## Limits",
        "- The held-out negatives are made the same ways as the training ones and are easier than SQuAD",
        "  2.0's hand-written unanswerables, so the threshold abstains less on SQuAD 2.0 than one tuned there.",
        "- English only; answers are at most 30 word pieces by default.",
        "",
        "Licences of the training data: SQuAD CC BY-SA 4.0, SQuADShifts CC BY 4.0, QED/NQ CC BY-SA 3.0;",
        "base model Apache-2.0.",
        "",
    ]
    return "\n".join(lines)
