"""SpanReader: loading, batching, windows and offsets with a tiny random QA model (no download)."""
from __future__ import annotations

import string

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rag.reading.span import (  # noqa: E402
    Calibration,
    SpanReader,
    default_reader_path,
    encode_pairs,
    predict_pairs,
    rank_candidates,
)
from rag.types import Paragraph, Passage, RetrievedPassage  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A randomly initialised 2-layer BertForQuestionAnswering with a character-level WordPiece vocab."""
    from transformers import BertConfig, BertForQuestionAnswering, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_qa")
    chars = string.ascii_lowercase + string.digits + string.punctuation.replace("#", "")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(chars) + [f"##{c}" for c in chars]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    if tokenizer.tokenize("a") != ["a"]:  # transformers 4.x reads the vocabulary from a file
        tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    assert tokenizer.tokenize("Tallinn 1960") == ["t", "##a", "##l", "##l", "##i", "##n", "##n", "1", "##9", "##6", "##0"]
    tokenizer.save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    torch.manual_seed(0)
    BertForQuestionAnswering(config).save_pretrained(folder)
    return folder


def _retrieved(paragraph_text: str, start: int, end: int, index: int = 0) -> RetrievedPassage:
    para = Paragraph("doc", index, paragraph_text, 0, len(paragraph_text))
    passage = Passage(index, "doc", index, paragraph_text[start:end], start, start)
    return RetrievedPassage(passage, para, 1.0 / (index + 1), rank=index)


PARAGRAPH = (
    "Tallinn is the capital of Estonia. A ferry links Tallinn and Helsinki across the gulf. "
    "The line opened in 1960 and carries nine million passengers a year. "
    "Helsinki is the capital of Finland and lies on the southern coast."
)


def _check_offsets(output, reader: SpanReader | None = None, max_tokens: int | None = None):
    assert output.spans, "expected at least one span"
    for span in output.spans:
        p = span.retrieved.passage
        assert p.paragraph_start <= span.start < span.end <= p.paragraph_start + len(p.text)
        local = p.text[span.start - p.paragraph_start : span.end - p.paragraph_start]
        assert span.retrieved.paragraph.text[span.start : span.end] == local == span.text
        assert span.text == span.text.strip() and span.text
        assert 0.0 <= span.score <= 1.0
        if max_tokens is not None:
            assert len(reader._tokenizer(span.text, add_special_tokens=False)["input_ids"]) <= max_tokens
    scores = [s.score for s in output.spans]
    assert scores == sorted(scores, reverse=True)
    assert output.no_answer_score == pytest.approx(1.0 - output.spans[0].score)


def test_loads_local_folder_and_answers(tiny_model_dir):
    reader = SpanReader(tiny_model_dir, max_seq_len=384)
    assert reader._model is None  # construction is cheap
    reader.warm_up()
    model = reader._model
    reader.warm_up()  # idempotent
    assert reader._model is model
    assert type(model).__name__ == "BertForQuestionAnswering"
    out = reader.read("Which cities does the ferry link?", [_retrieved(PARAGRAPH, 0, len(PARAGRAPH))], top_n=3)
    assert 1 <= len(out.spans) <= 3
    _check_offsets(out)


def test_sentence_windows_map_to_paragraph_offsets(tiny_model_dir):
    reader = SpanReader(tiny_model_dir)
    cut1 = PARAGRAPH.index("A ferry")
    cut2 = PARAGRAPH.index("Helsinki is")
    passages = [_retrieved(PARAGRAPH, cut1, cut2, 0), _retrieved(PARAGRAPH, cut2, len(PARAGRAPH), 1),
                _retrieved(PARAGRAPH, 0, cut1, 2)]
    assert all(p.passage.paragraph_start > 0 for p in passages[:2])
    out = reader.read("When did the line open?", passages, top_n=5)
    _check_offsets(out)


def test_one_batched_forward_for_all_passages(tiny_model_dir):
    reader = SpanReader(tiny_model_dir, batch_size=16)
    reader.warm_up()
    calls = []
    original = reader._model.forward

    def counting_forward(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape)
        return original(*args, **kwargs)

    reader._model.forward = counting_forward
    try:
        # Similar lengths (within MIN_FILL of the longest): one forward pass for all four.
        texts = [PARAGRAPH, PARAGRAPH[:190], PARAGRAPH[20:220], PARAGRAPH[5:]]
        passages = [_retrieved(t, 0, len(t), i) for i, t in enumerate(texts)]
        out = reader.read("Where is Helsinki?", passages, top_n=4)
        assert len(calls) == 1 and calls[0][0] == 4
        _check_offsets(out)
        # A much shorter window goes to its own batch instead of being padded to the longest.
        calls.clear()
        reader.read("Where is Helsinki?", passages + [_retrieved("Helsinki lies on the coast.", 0, 27, 4)])
        assert sorted(c[0] for c in calls) == [1, 4]
    finally:
        reader._model.forward = original


def test_length_batches_pad_little_and_respect_the_batch_size():
    from rag.reading.span import length_batches

    lengths = [100, 20, 95, 80, 74, 19, 300]
    batches = length_batches(lengths, batch_size=2, min_fill=0.75)
    assert sorted(r for b in batches for r in b) == list(range(7))
    assert batches == [[6], [0, 2], [3, 4], [1, 5]]  # 300 alone; 80 starts a batch (cap 2), 74 >= 0.75 * 80
    for b in batches:
        assert len(b) <= 2 and min(lengths[r] for r in b) >= 0.75 * max(lengths[r] for r in b)
    assert length_batches(lengths, batch_size=32, min_fill=0.0) == [sorted(range(7), key=lambda r: -lengths[r])]


def test_padding_does_not_change_scores(tiny_model_dir):
    reader = SpanReader(tiny_model_dir)
    reader.warm_up()
    alone = predict_pairs(reader._model, reader._tokenizer, ["Where is Helsinki?"], [PARAGRAPH[:90]])
    batched = predict_pairs(reader._model, reader._tokenizer, ["Where is Helsinki?"] * 2, [PARAGRAPH[:90], PARAGRAPH])
    assert [(c.start, c.end) for c in alone[0]] == [(c.start, c.end) for c in batched[0]]
    assert [c.score for c in alone[0]] == pytest.approx([c.score for c in batched[0]], abs=1e-4)


def test_long_passage_is_read_in_overlapping_windows(tiny_model_dir):
    reader = SpanReader(tiny_model_dir, max_seq_len=96, doc_stride=32)
    reader.warm_up()
    long_text = " ".join([PARAGRAPH] * 3)
    enc = encode_pairs(reader._tokenizer, ["When did the line open?"], [long_text], 96, 32)
    assert len(enc["input_ids"]) >= 5  # several windows of one passage
    assert max(len(ids) for ids in enc["input_ids"]) <= 96
    out = reader.read("When did the line open?", [_retrieved(long_text, 0, len(long_text))], top_n=5)
    _check_offsets(out)
    # Spans can come from late windows too: every character offset stays inside the passage.
    cands = predict_pairs(reader._model, reader._tokenizer, ["q"], [long_text], max_seq_len=96, doc_stride=32,
                          spans_per_window=3)[0]
    assert max(c.end for c in cands) > len(long_text) // 2


def test_max_answer_length_is_respected(tiny_model_dir, monkeypatch):
    reader = SpanReader(tiny_model_dir, max_answer_tokens=3)
    reader.warm_up()
    out = reader.read("Which cities?", [_retrieved(PARAGRAPH, 0, len(PARAGRAPH))], top_n=10)
    _check_offsets(out)
    # Cleaning completes a cut word ("all" of "Tallinn": 3 of this vocabulary's tokens, 7 after),
    # so the limit is on the spans the model chose, before cleaning (span_bounds.py).
    assert all(len(s.text.split()) <= 3 for s in out.spans)
    def raw(text, cands):  # best first, each span once: what predict_pairs kept before cleaning
        seen: set = set()
        return [c for c in cands if not ((c.start, c.end) in seen or seen.add((c.start, c.end)))]

    monkeypatch.setattr("rag.reading.span.clean_candidates", raw)
    out = reader.read("Which cities?", [_retrieved(PARAGRAPH, 0, len(PARAGRAPH))], top_n=10)
    assert out.spans
    for span in out.spans:
        assert len(reader._tokenizer(span.text, add_special_tokens=False)["input_ids"]) <= 3


def test_long_question_is_truncated(tiny_model_dir):
    reader = SpanReader(tiny_model_dir, max_seq_len=128, doc_stride=32)
    out = reader.read("why " * 300, [_retrieved(PARAGRAPH, 0, len(PARAGRAPH))])
    _check_offsets(out)


def test_no_passages_means_no_answer(tiny_model_dir):
    out = SpanReader(tiny_model_dir).read("Anything?", [])
    assert out.spans == [] and out.no_answer_score == 1.0


def test_calibration_is_a_probability_and_prefers_top_ranks():
    cal = Calibration(w_margin=0.2, w_gap=0.1, w_rank=-0.7, bias=-1.3)
    assert 0.0 < cal.prob(-50, -50, 4) < cal.prob(0, 0, 0) < cal.prob(10, 0, 0) < 1.0
    assert cal.prob(5, 0, 0) > cal.prob(5, 0, 3)
    assert cal.prob(1e6, 0, 0) <= 1.0 and cal.prob(-1e6, 0, 0) >= 0.0
    assert rank_candidates([[], []], cal) == []


def test_hub_name_that_cannot_load_raises_model_load_error(tmp_path):
    from rag.errors import ModelLoadError

    with pytest.raises(ModelLoadError):
        SpanReader(str(tmp_path / "no-such-model")).warm_up()


SHIPPED = default_reader_path()


@pytest.mark.skipif(not (SHIPPED / "config.json").is_file(), reason="shipped reader weights not installed")
def test_shipped_reader_answers_nato_question():
    paragraph = (
        "The North Atlantic Treaty Organization was founded in 1949. In the words of NATO’s first "
        "Secretary General, Lord Hastings Lionel Ismay, the alliance was created to keep the Soviet "
        "Union out, the Americans in, and the Germans down."
    )
    reader = SpanReader(SHIPPED)
    out = reader.read("Who was NATO's first Secretary General?", [_retrieved(paragraph, 0, len(paragraph))])
    _check_offsets(out)
    assert "Lord Hastings Lionel Ismay" in out.spans[0].text
    assert out.spans[0].score >= reader.default_threshold


def test_onnx_runtime_reads_the_same_spans_as_pytorch(tiny_model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch_reader = SpanReader(tiny_model_dir, runtime="torch")
    onnx_reader = SpanReader(tiny_model_dir, runtime="onnx", onnx_cache_dir=tmp_path)
    assert torch_reader.model_runtime == "torch" and onnx_reader.model_runtime == "onnx"
    cut = PARAGRAPH.index("Helsinki is")
    passages = [_retrieved(PARAGRAPH, 0, cut, 0), _retrieved(PARAGRAPH, cut, len(PARAGRAPH), 1)]
    for question in ("When did the line open?", "Which cities does the ferry link?"):
        a = torch_reader.read(question, passages, top_n=3)
        b = onnx_reader.read(question, passages, top_n=3)
        _check_offsets(b)
        assert [(s.start, s.end) for s in a.spans] == [(s.start, s.end) for s in b.spans]
        assert [s.score for s in b.spans] == pytest.approx([s.score for s in a.spans], abs=1e-4)
    # The export is cached: a second reader reuses the graph file.
    graphs = list(tmp_path.rglob("model.onnx"))
    assert len(graphs) == 1
    stamp = graphs[0].stat().st_mtime_ns
    assert SpanReader(tiny_model_dir, runtime="auto", onnx_cache_dir=tmp_path).model_runtime == "onnx"
    assert graphs[0].stat().st_mtime_ns == stamp
    # PyTorch's own int8 when ONNX is not allowed.
    assert SpanReader(tiny_model_dir, runtime="torch", quantize="int8").model_runtime == "torch"


def test_int8_onnx_reader_is_a_second_checked_graph_with_exact_offsets(tiny_model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    fp32 = SpanReader(tiny_model_dir, runtime="onnx", onnx_cache_dir=tmp_path)
    int8 = SpanReader(tiny_model_dir, runtime="onnx", quantize="int8", onnx_cache_dir=tmp_path)
    assert fp32.model_runtime == "onnx" and int8.model_runtime == "onnx"
    graphs = {p.parent.name.split("-")[0] + ("-int8" if "int8" in p.parent.name else ""): p for p in tmp_path.rglob("model.onnx")}
    assert set(graphs) == {"qa", "qa-int8"}
    # int8 MatMul weights (the shipped reader: 90 -> 23 MB; this tiny model is mostly embeddings).
    assert graphs["qa-int8"].stat().st_size < 0.8 * graphs["qa"].stat().st_size
    cut = PARAGRAPH.index("Helsinki is")
    passages = [_retrieved(PARAGRAPH, 0, cut, 0), _retrieved(PARAGRAPH, cut, len(PARAGRAPH), 1)]
    out = int8.read("When did the line open?", passages, top_n=3)
    assert out.spans
    _check_offsets(out)


def test_alternative_answers_do_not_overlap_in_one_paragraph(tiny_model_dir):
    reader = SpanReader(tiny_model_dir)
    cut = PARAGRAPH.index("Helsinki is")
    passages = [_retrieved(PARAGRAPH, 0, cut, 0), _retrieved(PARAGRAPH, cut, len(PARAGRAPH), 1)]
    out = reader.read("When did the line open?", passages, top_n=5)
    _check_offsets(out)
    spans = [(s.retrieved.paragraph.paragraph_index, s.start, s.end) for s in out.spans]
    for i, (pa, a0, a1) in enumerate(spans):
        for pb, b0, b1 in spans[i + 1:]:
            assert pa != pb or a1 <= b0 or b1 <= a0, f"overlapping answers {spans}"


def test_read_batch_is_one_flattened_pass_with_the_answers_of_read(tiny_model_dir):
    reader = SpanReader(tiny_model_dir, batch_size=32)
    reader.warm_up()
    cut = PARAGRAPH.index("Helsinki is")
    sets = [
        [_retrieved(PARAGRAPH, 0, cut, 0), _retrieved(PARAGRAPH, cut, len(PARAGRAPH), 1)],
        [_retrieved(PARAGRAPH, 0, len(PARAGRAPH), 0)],
        [],  # no passages: no answer, and no pair in the forward pass
        [_retrieved(PARAGRAPH[:70], 0, 70, 0), _retrieved(PARAGRAPH, 40, 200, 1), _retrieved(PARAGRAPH, 0, cut, 2)],
    ]
    questions = ["When did the line open?", "Which cities does the ferry link?", "Anything?", "Where is Helsinki?"]
    alone = [reader.read(q, ps, top_n=3) for q, ps in zip(questions, sets)]
    calls = []
    original = reader._model.forward

    def counting_forward(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        return original(*args, **kwargs)

    reader._model.forward = counting_forward
    try:
        batched = reader.read_batch(questions, sets, top_n=3)
    finally:
        reader._model.forward = original
    # All 6 pairs (one window each) of the 4 questions in length-sorted flattened passes: as many
    # as length_batches makes for their window lengths, never one per question.
    lengths = [len(ids) for ids in encode_pairs(reader._tokenizer, [q for q, ps in zip(questions, sets) for _ in ps],
                                                [p.passage.text for ps in sets for p in ps], 384, 128)["input_ids"]]
    from rag.reading.span import length_batches

    assert sorted(calls) == sorted(len(b) for b in length_batches(lengths, 32)) and sum(calls) == 6
    assert batched[2].spans == [] and batched[2].no_answer_score == 1.0
    for a, b in zip(alone, batched):
        assert [(s.retrieved.rank, s.start, s.end, s.text) for s in a.spans] == [(s.retrieved.rank, s.start, s.end, s.text) for s in b.spans]
        assert [s.score for s in b.spans] == pytest.approx([s.score for s in a.spans], abs=1e-4)
        assert b.no_answer_score == pytest.approx(a.no_answer_score, abs=1e-4)
    with pytest.raises(ValueError):
        reader.read_batch(["q"], [])


def test_onnx_read_batch_matches_onnx_read(tiny_model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    reader = SpanReader(tiny_model_dir, runtime="onnx", onnx_cache_dir=tmp_path)
    cut = PARAGRAPH.index("Helsinki is")
    sets = [[_retrieved(PARAGRAPH, 0, cut, 0), _retrieved(PARAGRAPH, cut, len(PARAGRAPH), 1)],
            [_retrieved(PARAGRAPH, 0, len(PARAGRAPH), 0)]]
    questions = ["When did the line open?", "Which cities does the ferry link?"]
    batched = reader.read_batch(questions, sets)
    assert reader.model_runtime == "onnx"
    for q, ps, b in zip(questions, sets, batched):
        a = reader.read(q, ps)
        _check_offsets(b)
        assert [(s.start, s.end) for s in a.spans] == [(s.start, s.end) for s in b.spans]
        assert [s.score for s in b.spans] == pytest.approx([s.score for s in a.spans], abs=1e-4)
