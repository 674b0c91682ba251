"""Stage 3's additions to the output contract: a saved temperature, multi-label decisions by
threshold, and abstention by `min_score`; the single-label contract itself never changes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from transformers import BertConfig

from clearpipe.errors import CheckpointError, InputError
from clearpipe.postprocess import (
    BEST,
    Activation,
    Predictions,
    Temperature,
    check_min_score,
    postprocess,
    saved_temperature,
    saved_thresholds,
)

LABELS = ["neg", "neu", "pos"]
LOGITS = np.array([[0.0, 1.0, 3.0], [2.0, 1.9, -1.0]])


@settings(max_examples=200, deadline=None)
@given(
    # Rounded, so that distinct logits stay distinct after any scaling (no float ties).
    logits=arrays(np.float64, (5, 4), elements=st.floats(-30, 30).map(lambda x: round(x, 3))),
    value=st.floats(0.05, 20),
    power=st.sampled_from([1.0, 0.3, 2.2, 5.0]),
)
def test_a_temperature_never_changes_a_label(logits, value, power):
    t = Temperature(value, power)
    assert np.array_equal(t.apply(logits).argmax(axis=1), logits.argmax(axis=1))
    raw = postprocess(logits, ["a", "b", "c", "d"], Activation.SOFTMAX)
    calibrated = postprocess(logits, ["a", "b", "c", "d"], Activation.SOFTMAX, t)
    assert [r["label"] for r in calibrated.to_output()] == [r["label"] for r in raw.to_output()]


def test_a_temperature_divides_softmax_logits_only():
    t = Temperature(2.0)
    calibrated = postprocess(LOGITS, LABELS, Activation.SOFTMAX, t)
    expected = postprocess(LOGITS / 2.0, LABELS, Activation.SOFTMAX)
    assert np.allclose(calibrated.scores, expected.scores) and calibrated.temperature == t
    # Sigmoid and raw scores ignore it: it was fitted for a softmax.
    for activation in (Activation.SIGMOID, Activation.NONE):
        scaled = postprocess(LOGITS, LABELS, activation, t)
        assert np.array_equal(scaled.scores, postprocess(LOGITS, LABELS, activation).scores)
        assert scaled.temperature is None


def test_a_margin_temperature_sets_the_gap_between_the_two_best_logits():
    t = Temperature(2.0, power=2.0)
    scaled = t.apply(LOGITS)
    gaps = np.sort(scaled, axis=1)[:, -1] - np.sort(scaled, axis=1)[:, -2]
    assert np.allclose(gaps, np.array([2.0, 0.1]) ** 2 / 2.0)
    assert t.to_dict() == {"method": "margin_temperature", "temperature": 2.0, "power": 2.0}
    assert Temperature(1.5).to_dict() == {"method": "temperature", "temperature": 1.5}


def test_single_label_output_is_unchanged():
    out = postprocess(LOGITS, LABELS, Activation.SOFTMAX, Temperature(3.0)).to_output()
    assert [set(r) for r in out] == [{"label", "score"}] * 2
    ranked = postprocess(LOGITS, LABELS, Activation.SOFTMAX).to_output(None)
    assert all(set(r) == {"label", "score"} for row in ranked for r in row)


def test_thresholds_say_which_labels_apply():
    thresholds = np.array([0.3, 0.9, 0.5])
    p = postprocess(np.array([[0.0, 1.0, -3.0]]), LABELS, Activation.SIGMOID, thresholds=thresholds)
    # sigmoid: 0.5, 0.73, 0.05 -> neg applies (0.5 >= 0.3), neu does not (0.73 < 0.9), pos does not
    assert p.to_output() == [{"label": "neu", "score": pytest.approx(0.731, abs=1e-3), "applies": False}]
    ranked = p.to_output(None)[0]
    assert [(r["label"], r["applies"]) for r in ranked] == [("neu", False), ("neg", True), ("pos", False)]
    assert p.applies().tolist() == [[True, False, False]]
    # Thresholds were tuned on sigmoid scores: other activations carry no decisions.
    assert (
        "applies" not in postprocess(LOGITS, LABELS, Activation.SOFTMAX, thresholds=thresholds).to_output()[0]
    )


def test_min_score_marks_undecided_results_without_replacing_the_label():
    p = postprocess(LOGITS, LABELS, Activation.SOFTMAX)
    out = p.to_output(BEST, min_score=0.6)
    assert [r["label"] for r in out] == [r["label"] for r in p.to_output()]
    assert [r["decided"] for r in out] == [True, False]  # 0.84 and 0.51
    assert p.decided(0.6).tolist() == [True, False]
    ranked = p.to_output(2, min_score=0.6)
    assert [[r["decided"] for r in row] for row in ranked] == [[True, False], [False, False]]


def test_min_score_is_a_probability_for_softmax_scores():
    assert check_min_score(None, Activation.SIGMOID) is None
    assert check_min_score(1, Activation.SOFTMAX) == 1.0
    for bad in (-0.1, 1.5, True, "0.5"):
        with pytest.raises(InputError, match="min_score must be a number from 0 to 1"):
            check_min_score(bad, Activation.SOFTMAX)
    with pytest.raises(InputError, match="threshold"):
        check_min_score(0.5, Activation.SIGMOID)


def test_saved_keys_are_read_and_checked():
    config = BertConfig(num_labels=3)
    assert saved_temperature(config) is None
    config.clearpipe_calibration = {"method": "temperature", "temperature": 1.7, "rows": 10}
    assert saved_temperature(config) == Temperature(1.7)
    config.clearpipe_calibration = {"method": "margin_temperature", "temperature": 9.0, "power": 2.0}
    assert saved_temperature(config) == Temperature(9.0, 2.0)
    for broken in (
        {"method": "temperature", "temperature": -1},
        {"method": "platt"},
        "2.0",
        {"temperature": 2},
    ):
        config.clearpipe_calibration = broken
        with pytest.raises(CheckpointError, match="calibrated=False"):
            saved_temperature(config)


def test_saved_thresholds_default_to_one_half():
    config = BertConfig(num_labels=2, problem_type="multi_label_classification")
    assert saved_thresholds(config, ["a", "b"]).tolist() == [0.5, 0.5]
    config.label_thresholds = {"b": 0.35}
    assert saved_thresholds(config, ["a", "b"]).tolist() == [0.5, 0.35]
    assert saved_thresholds(BertConfig(num_labels=2), ["a", "b"]) is None


def test_predictions_keep_their_calibration_through_windows():
    p = Predictions(np.array([[0.2, 0.8]]), ["a", "b"], Activation.SOFTMAX, temperature=Temperature(2.0))
    assert p.to_output(min_score=0.9) == [{"label": "b", "score": 0.8, "decided": False}]
