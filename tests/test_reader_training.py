"""Reader training: rule-made hard negatives, replayable batch order, resumable runs (tiny model)."""
from __future__ import annotations

import json
import shutil
import random
import string
from pathlib import Path

import pytest

from rag.training.checkpoint import batches_from, epoch_order
from rag.training.data import QAExample, make_negatives
from rag.training.negatives import antonym_swap, entity_swap, negation, number_swap, ordinal_swap

CTX = ("Lord Ismay was the first Secretary General of NATO, from 1952 to 1957. The alliance's largest "
       "member is the United States, and its headquarters are in Brussels.")


def _ex(question: str, answer: str = "Lord Ismay", context: str = CTX) -> QAExample:
    return QAExample("q1", question, context, context.index(answer), answer, [answer], "g", "squad_train")


def _check(neg, kind: str, changed_to: str):
    assert neg is not None and neg.kind == kind and neg.golds == [] and neg.answer_start == -1 and neg.context == CTX
    assert changed_to in neg.question and changed_to.lower() not in CTX.lower().split()


def test_rules_make_questions_the_paragraph_does_not_answer():
    rng = random.Random(0)
    neg = ordinal_swap(_ex("Who was the first Secretary General of NATO?"), rng)
    assert neg.kind == "ordinal_swap" and neg.golds == [] and "first" not in neg.question.split()
    new = neg.question.split()[3]
    assert new not in CTX.lower().split() and neg.question.replace(new, "first") == "Who was the first Secretary General of NATO?"
    neg = antonym_swap(_ex("What is the largest member of the alliance?", "the United States"), rng)
    _check(neg, "antonym_swap", "smallest")
    neg = number_swap(_ex("Who led NATO from 1952?"), rng)
    assert neg is not None and "1952" not in neg.question and neg.kind == "number_swap"
    neg = entity_swap(_ex("Where are NATO's headquarters in Brussels?", "Brussels"), ["Tokyo", "Brussels"], rng)
    _check(neg, "entity_swap", "Tokyo")
    neg = negation(_ex("Which city is the headquarters in?", "Brussels"), rng)
    assert neg.question == "Which city is not the headquarters in?" and neg.kind == "negation"
    # No rule applies: nothing shared to change, or the paragraph already negates.
    assert number_swap(_ex("Who was it?"), rng) is None
    assert negation(_ex("Who was it?", "not", "It was not Ismay."), rng) is None


def test_hard_share_zero_keeps_the_old_negatives_and_a_positive_share_adds_rule_kinds():
    articles = [[_ex(q) for q in ("Who was the first Secretary General of NATO?", "Who led NATO from 1952 to 1957?",
                                  "What is the largest member?")] * 4]
    old = make_negatives(articles, 1.0, 3)
    assert make_negatives(articles, 1.0, 3, hard=0.0) == old
    kinds = {n.kind for n in make_negatives(articles, 1.0, 3, hard=1.0)}
    assert kinds & {"ordinal_swap", "number_swap", "antonym_swap", "negation"}


def test_batch_order_replays_from_any_step():
    straight = [rows for _, (s, rows) in zip(range(25), batches_from(50, 4, 7, 0))]
    assert [s for _, (s, _r) in zip(range(25), batches_from(50, 4, 7, 0))] == list(range(25))
    resumed = [rows for _, (_s, rows) in zip(range(10), batches_from(50, 4, 7, 15))]
    assert resumed == straight[15:25]  # crosses the epoch boundary at step 12
    assert epoch_order(50, 4, 7, 0) != epoch_order(50, 4, 7, 1)
    rows = [i for b in epoch_order(50, 4, 7, 0) for i in b]
    assert len(epoch_order(50, 4, 7, 0)) == 12 and len(set(rows)) == 48 and set(rows) <= set(range(50))


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast

    base = tmp_path_factory.mktemp("train")
    model_dir = base / "tiny"
    model_dir.mkdir()
    chars = string.ascii_lowercase + string.digits + string.punctuation.replace("#", "")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(chars) + [f"##{c}" for c in chars]
    (model_dir / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(model_dir / "vocab.txt"), do_lower_case=True).save_pretrained(model_dir)
    torch.manual_seed(0)
    BertForQuestionAnswering(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                        intermediate_size=32, max_position_embeddings=512)).save_pretrained(model_dir)
    data = base / "data"
    paragraphs = [
        {"context": f"Town {n} was founded in {1800 + n} by Mayor Ann{n}. Its largest river is the Rio{n}.",
         "qas": [{"id": f"{a}-{n}-{k}", "question": q, "answers": [{"text": t, "answer_start": 0}]}
                 for k, (q, t) in enumerate([(f"When was Town {n} founded?", f"{1800 + n}"),
                                             (f"Who founded Town {n}?", f"Mayor Ann{n}"),
                                             ("What is its largest river?", f"the Rio{n}")])]}
        for a in range(1) for n in range(12)
    ]
    for p in paragraphs:
        for qa in p["qas"]:
            qa["answers"][0]["answer_start"] = p["context"].index(qa["answers"][0]["text"])
    squad = {"data": [{"title": f"A{i}", "paragraphs": paragraphs[i * 3:(i + 1) * 3]} for i in range(4)]}
    for rel in ("squad-v1.1-train-partial/train-slice-44-articles.json", "squadshifts-train/new_wiki_v1.0.json",
                "squadshifts-train/reddit_v1.0.json"):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_text(json.dumps(squad))
    (data / "qed-train-partial").mkdir()
    return model_dir, data


def _train(tiny_setup, run_dir, **kw):
    from rag.training.train import train_reader_command

    model_dir, data = tiny_setup
    args = dict(data_dir=data, preset="cpu", base_model=str(model_dir), output_dir=run_dir / "out", run_dir=run_dir,
                squad_v1_dev=data / "none.json", squad_v2_dev=data / "none.json", seed=1, epochs=0.0, lr=1e-3,
                batch_size=4, max_seq_len=64, doc_stride=16, max_questions=0, max_steps=6, neg_ratio=0.5,
                hard_negatives=0.6, question_swap=True, squad_rest=False, heldout_fraction=0.2, calibration_limit=10,
                real_use_k=2, unanswerable_share=0.5, resume=False, finish=False, save_every=3, calibrate_only=False, dev_reports=False, device="cpu", export=False,
                techdocs=Path(""), precision="fp32", bucket=True, freeze_embeddings=False, span_features=True)
    args.update(kw)
    train_reader_command(**args)
    return [json.loads(line) for line in (run_dir / "train.jsonl").read_text().splitlines()]


def test_an_interrupted_run_resumes_to_the_same_weights(tiny_setup, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from rag.training import checkpoint as ck

    straight = _train(tiny_setup, tmp_path / "a", export=True)
    calibrated = next(r for r in straight if r["event"] == "calibration")
    assert 0.0 <= calibrated["calibration"]["threshold"] <= 1.0 + 1e-6 and calibrated["heldout_real_use"]["n_no_ans"] > 0
    out = tmp_path / "a" / "out"
    assert "rule edits" in (out / "README.md").read_text() and (out / "reader_calibration.json").is_file()
    from rag.reading.span import SpanReader

    reader = SpanReader(out)
    reader.warm_up()
    assert reader.default_threshold == pytest.approx(calibrated["calibration"]["threshold"])
    # Stop after step 3 (as SIGTERM would), then resume.
    real = ck.StopFlag.__enter__

    def stop_after_three(self):
        flag = real(self)
        original = ck.save_checkpoint

        def save(run_dir, model, opt, sched, step, cfg, history):
            if step == 3:
                flag.stop = True
            return original(run_dir, model, opt, sched, step, cfg, history)

        monkeypatch.setattr(ck, "save_checkpoint", save)
        return flag

    monkeypatch.setattr(ck.StopFlag, "__enter__", stop_after_three)
    stopped = _train(tiny_setup, tmp_path / "b")
    assert stopped[-1]["event"] == "stopped" and stopped[-1]["step"] == 3
    monkeypatch.undo()
    # --finish ships the interrupted run as it is: no more steps, calibrated and exported.
    shutil.copytree(tmp_path / "b", tmp_path / "c")
    finished = _train(tiny_setup, tmp_path / "c", resume=True, finish=True, export=True)
    assert not any(r["event"] == "train" for r in finished)
    assert any(r["event"] == "finish" and r["step"] == 3 and r["scheduled"] == 6 for r in finished)
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["config"]["cut_short_at_step"] == 3
    assert (tmp_path / "c" / "out" / "reader_calibration.json").is_file()
    assert torch.load(tmp_path / "c" / ck.CHECKPOINT, weights_only=False)["step"] == 3
    # The training time of the interrupted session counts in the finished run's.
    assert json.loads((tmp_path / "b" / ck.SECONDS_FILE).read_text())["step"] == 3
    assert ck.trained_seconds(tmp_path / "b") > 0
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["train_seconds"] == pytest.approx(ck.trained_seconds(tmp_path / "b"), abs=0.2)
    resumed = _train(tiny_setup, tmp_path / "b", resume=True)
    assert any(r["event"] == "resumed" and r["step"] == 3 for r in resumed)
    assert any(r.get("features_cached") for r in resumed if r["event"] == "data")
    a = torch.load(tmp_path / "a" / ck.CHECKPOINT, weights_only=False)
    b = torch.load(tmp_path / "b" / ck.CHECKPOINT, weights_only=False)
    assert a["step"] == b["step"] == 6
    for name, tensor in a["model"].items():
        assert torch.allclose(tensor, b["model"][name], atol=1e-6), name
    with pytest.raises(ValueError, match="other settings"):
        _train(tiny_setup, tmp_path / "b", resume=True, lr=5e-4)


def test_calibrate_only_trains_nothing_and_exports_a_calibrated_reader(tiny_setup, tmp_path):
    from rag.training import checkpoint as ck

    log = _train(tiny_setup, tmp_path, calibrate_only=True, export=True)
    assert not any(r["event"] == "train" for r in log) and not (tmp_path / ck.CHECKPOINT).exists()
    calibrated = next(r for r in log if r["event"] == "calibration")
    saved = json.loads((tmp_path / "out" / "reader_calibration.json").read_text())
    assert saved["threshold"] == pytest.approx(calibrated["calibration"]["threshold"])


def test_the_threshold_follows_the_share_of_unanswerable_questions():
    from rag.training.evaluation import best_threshold

    # Two answerable questions answered right at 0.3 and 0.6, two unanswerable ones answered
    # (wrongly) at 0.5 and 0.7.  Half and half: answering only above 0.7 loses one right answer
    # (0.6) and gains nothing; as if 1 in 10 had no answer, answering from 0.3 up wins.
    answerable = [QAExample(f"a{i}", "q", "x", 0, "x", ["x"]) for i in range(2)]
    unanswerable = [QAExample(f"u{i}", "q", "x", -1, "", []) for i in range(2)]
    preds = [("x", 0.3, []), ("x", 0.6, []), ("x", 0.5, []), ("x", 0.7, [])]
    examples = answerable + unanswerable
    assert best_threshold(examples, preds) == best_threshold(examples, preds, 0.5)
    assert best_threshold(examples, preds, 0.5) > 0.7
    assert best_threshold(examples, preds, 0.1) == 0.3


def test_technical_questions_join_training_with_whole_documents_held_out(tiny_setup, tmp_path):
    """--techdocs adds every technical question (their documents split whole), bf16 autocast trains."""
    from rag.training.train import autocast_dtype

    path = tmp_path / "tech.jsonl"
    with path.open("w") as fh:
        for d in range(20):
            ctx = f"--opt{d}=N\nset the widget count to N (default: {d + 3})"
            rows = [{"question": f"What is the default --opt{d}?", "context": ctx, "answer_start": ctx.index(f"{d + 3})"),
                     "answer_text": f"{d + 3}", "kind": "default", "subject": f"--opt{d}"},
                    {"question": f"What is the default --opt{d + 50}?", "context": ctx, "answer_start": -1, "answer_text": "",
                     "kind": "swap_default", "subject": f"--opt{d}"}]
            fh.write(json.dumps({"file": f"man/t{d}.txt", "package": "p", "title": "t", "rows": rows}) + "\n")
    log = _train(tiny_setup, tmp_path / "run", techdocs=path, precision="bf16", max_steps=4)
    data = next(r for r in log if r["event"] == "data")
    held_tech = data["heldout_negative_kinds"].get("swap_default", 0)
    assert data["by_source"]["techdocs"] + held_tech == 20
    assert data["negative_kinds"]["swap_default"] + held_tech == 20 and held_tech > 0
    assert data["config"]["precision"] == "bf16" and data["config"]["techdocs"] == str(path)
    assert any(r["event"] == "train" and r["step"] == 4 for r in log)
    assert autocast_dtype("cpu", "fp32") is None
    assert autocast_dtype("cuda", "auto") is not None
