"""clearpipe.engine.recheck: int8 close calls re-run by the float model, in `Classifier` and in traces."""

from __future__ import annotations

import dataclasses

import jsonschema
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rich.console import Console

import clearpipe
from clearpipe.engine import loop, precision, recheck
from clearpipe.inputs import normalize_inputs
from clearpipe.trace.record import json_schema
from clearpipe.trace.terminal import render

TEXTS = ["the film was good", "bad", "a very very boring plot with awful scenes and bad actors", "fun", ""]
logit_rows = arrays(
    np.float32,
    st.tuples(st.integers(1, 6), st.integers(2, 5)),
    elements=st.integers(-64, 64).map(lambda i: i / 8),  # exact in float32, also after adding 3
)


def test_gap_shift_is_the_largest_move_of_a_difference_between_two_logits():
    fast = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    reference = np.array([[1.0, 2.5, 2.0], [0.0, 0.0, 0.0]])
    # row 0 moved by (0, -0.5, +1): the gap between logits 1 and 2 moved by 1.5
    assert recheck.gap_shift(fast, reference).tolist() == [1.5, 0.0]
    assert recheck.gap_shift(np.array([[0.3]]), np.array([[-0.2]])).tolist() == [0.5]


def test_calibrate_takes_a_quantile_and_needs_rows():
    reference = np.zeros((100, 2))
    fast = np.stack([np.zeros(100), np.arange(100) / 100], axis=1)  # shifts 0.00 .. 0.99
    assert recheck.calibrate(fast, reference, quantile=0.5) == pytest.approx(0.495)
    assert recheck.calibrate(fast, reference, quantile=1.0) == pytest.approx(0.99)
    with pytest.raises(ValueError):
        recheck.calibrate(np.zeros((0, 2)), np.zeros((0, 2)))


@settings(max_examples=100, deadline=None)
@given(logit_rows, st.floats(0, 4))
def test_a_close_call_is_a_row_whose_two_best_logits_are_within_the_margin(logits, margin):
    rows = set(recheck.close_calls(logits, margin).tolist())
    for i, row in enumerate(logits):
        best, second = sorted(row.tolist())[-1], sorted(row.tolist())[-2]
        assert (i in rows) == (best - second < margin)
    # softmax decisions ignore a constant added to a row, and so do close calls
    assert set(recheck.close_calls(logits + 3.0, margin).tolist()) == rows
    # a sigmoid's yes/no decisions add rows, never remove them
    assert rows <= set(recheck.close_calls(logits, margin, sigmoid=True).tolist())


def test_a_one_logit_model_is_close_when_its_logit_is_near_zero():
    logits = np.array([[0.05], [-0.2], [3.0]], dtype=np.float32)
    assert recheck.close_calls(logits, margin=0.1).tolist() == [0]
    assert recheck.close_calls(logits, margin=0.5).tolist() == [0, 1]


def test_sigmoid_rows_are_close_when_any_label_sits_near_its_threshold():
    logits = np.array([[5.0, 0.1, -4.0], [5.0, 2.0, -4.0]], dtype=np.float32)
    assert recheck.close_calls(logits, margin=0.5).tolist() == []
    assert recheck.close_calls(logits, margin=0.5, sigmoid=True).tolist() == [0]


def test_the_engine_runs_only_the_rows_asked_for(tiny):
    clf = clearpipe.load(tiny("bert", 3), dtype="float32", device="cpu")
    tokenized = clf.tokenize(normalize_inputs(TEXTS).items)
    every = clf.logits(tokenized)
    picked = [4, 0, 2]
    some = loop.run(tokenized, clf.runner, dataclasses.replace(clf.budget, max_tokens=8), rows=picked)
    np.testing.assert_allclose(some, every[picked], atol=1e-5)


@pytest.fixture(scope="module")
def int8_clf(tiny):
    return clearpipe.load(tiny("bert", 3), dtype="int8", device="cpu")


def test_int8_classifiers_get_a_calibrated_float_referee(int8_clf, tiny):
    referee = int8_clf.referee
    assert referee is not None and referee.margin > 0
    assert referee.dtype == precision.resolve_dtype("auto", torch.device("cpu"))
    assert next(referee.model.parameters()).dtype == precision.torch_dtype(referee.dtype)
    assert f"recheck={referee.dtype}" in repr(int8_clf)
    for dtype in ("float32", "bfloat16"):
        assert clearpipe.load(tiny("bert", 3), dtype=dtype).referee is None
    # recheck=False keeps int8's own answers and no float copy
    bare = clearpipe.load(tiny("bert", 3), dtype="int8", recheck=False)
    assert bare.referee is None and "recheck" not in repr(bare)


def test_close_calls_take_the_referees_logits_and_the_rest_keep_int8s(int8_clf, tiny):
    tokenized = int8_clf.tokenize(normalize_inputs(TEXTS).items)
    float_clf = clearpipe.load(tiny("bert", 3), dtype=int8_clf.referee.dtype, device="cpu")
    referee = int8_clf.referee
    try:
        int8_clf.referee = dataclasses.replace(referee, margin=0.0)  # nothing is close
        int8_only = int8_clf.logits(tokenized)
        int8_clf.referee = dataclasses.replace(referee, margin=float("inf"))  # everything is
        all_float = int8_clf.logits(tokenized)
        gaps = np.sort(int8_only, axis=1)[:, -1] - np.sort(int8_only, axis=1)[:, -2]
        int8_clf.referee = dataclasses.replace(referee, margin=float(np.median(gaps)))
        mixed = int8_clf.logits(tokenized)
    finally:
        int8_clf.referee = referee
    # Float32 logits can move in their last bits with the rows a batch holds (MKL's kernels, on
    # CPUs without AVX-512); 1e-6 is far below what separates int8 from float here.
    np.testing.assert_allclose(all_float, float_clf.logits(tokenized), rtol=0, atol=1e-6)
    assert not np.array_equal(int8_only, all_float)
    close = gaps < np.median(gaps)
    assert close.any() and not close.all()
    np.testing.assert_allclose(mixed[close], all_float[close], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(mixed[~close], int8_only[~close])


@pytest.mark.parametrize("margin", [0.0, float("inf")])
def test_a_trace_follows_the_model_that_answered(int8_clf, margin):
    referee = int8_clf.referee
    text = "the film was good"
    try:
        int8_clf.referee = dataclasses.replace(referee, margin=margin)
        trace = int8_clf.trace(text)
        answer = int8_clf.predict([text])
    finally:
        int8_clf.referee = referee
    assert trace.prediction.label == answer.to_output()[0]["label"]
    assert list(trace.activation.probabilities.values()) == pytest.approx(answer.scores[0].tolist(), abs=1e-5)
    jsonschema.Draft202012Validator(json_schema()).validate(trace.to_dict())
    if margin == 0.0:
        assert trace.model.recheck is None
    else:
        assert trace.model.recheck is not None and trace.model.recheck.dtype == referee.dtype
        assert trace.model.recheck.fast_logits != trace.model.logits
        assert trace.attributions is not None and trace.attributions.completeness.ok
        console = Console(record=True, width=200)
        render(trace, console)
        assert "close call" in console.export_text()
