"""Evaluation: gold sets, SQuAD and BEIR benchmarks, metrics and reports."""
