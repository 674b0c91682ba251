"""clearpipe against transformers.pipeline as the oracle, on tiny random checkpoints.

clearpipe runs on every device of `devices.DEVICES`; the oracle always runs on the CPU.
"""

import pytest
from transformers import pipeline

import clearpipe
from devices import DEVICES, tolerance

TEXTS = [
    "the film was good",
    "bad",
    "",
    "   ",
    "a really really long and boring story with actors that never ends " * 10,
    "café naïve 😀 the best movie ever",
]
PAIRS = [("the premise", "a hypothesis"), ("a good film", "it was not very good at all")]
CASES = [
    ("bert", 2, None),
    ("distilbert", 3, None),
    ("roberta", 3, None),
    ("bert", 4, "multi_label_classification"),
    ("roberta", 1, None),
]


def _close(ours, theirs, tol=1e-5):
    if isinstance(theirs, dict):
        theirs = [theirs]
        ours = [ours]
    assert [o["label"] for o in ours] == [t["label"] for t in theirs]
    for o, t in zip(ours, theirs, strict=True):
        assert o["score"] == pytest.approx(t["score"], abs=tol)


@pytest.fixture(scope="module", params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2] or 'single'}")
def pair_of_classifiers(request, tiny, device):
    folder = tiny(*request.param)
    # Parity with transformers is an fp32 property; the default dtype may be bf16 (docs/ENGINE.md).
    ours = clearpipe.load(folder, device=device, dtype="float32")
    assert ours.device.type == device
    return ours, pipeline("text-classification", model=str(folder), device="cpu")


@pytest.mark.parametrize("top_k", [clearpipe.BEST, 1, 2, None])
@pytest.mark.parametrize("function_to_apply", [None, "softmax", "sigmoid", "none"])
def test_batch_matches_transformers(pair_of_classifiers, top_k, function_to_apply):
    ours, theirs = pair_of_classifiers
    kwargs = {} if top_k is clearpipe.BEST else {"top_k": top_k}
    if function_to_apply:
        kwargs["function_to_apply"] = function_to_apply
    expected = theirs(TEXTS, truncation=True, **kwargs)
    got = ours(TEXTS, **kwargs)
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        _close(g, e, tolerance(ours.device, 1e-5))


def test_single_text_shape_matches_contract(pair_of_classifiers):
    ours, theirs = pair_of_classifiers
    tol = tolerance(ours.device, 1e-5)
    single = ours("the film was good")
    # A multi-label model's results also say whether each label applies (its threshold, 0.5 here).
    multi = ours.model.config.problem_type == "multi_label_classification"
    assert set(single) == {"label", "score"} | ({"applies"} if multi else set())
    _close(single, theirs("the film was good")[0], tol)
    ranked = ours("the film was good", top_k=None)
    assert isinstance(ranked, list)
    _close(ranked, theirs("the film was good", top_k=None), tol)


def test_pairs_match_transformers(pair_of_classifiers):
    ours, theirs = pair_of_classifiers
    for premise, hypothesis in PAIRS:
        expected = theirs({"text": premise, "text_pair": hypothesis}, truncation=True, top_k=None)
        tol = tolerance(ours.device, 1e-5)
        _close(ours((premise, hypothesis), top_k=None), expected, tol)
        _close(ours({"text": premise, "text_pair": hypothesis}, top_k=None), expected, tol)


def test_batch_size_does_not_change_answers(tiny):
    folder = tiny("bert", 2)
    big = clearpipe.load(folder, batch_size=64, dtype="float32")(TEXTS * 3, top_k=None)
    small = clearpipe.load(folder, batch_size=1, dtype="float32")(TEXTS * 3, top_k=None)
    for a, b in zip(big, small, strict=True):
        _close(a, b)


@pytest.mark.parametrize("top_k", [clearpipe.BEST, None])
def test_no_calibration_restores_parity_with_transformers(tiny_calibrated, top_k):
    """transformers ignores a saved temperature; `calibrated=False` gives exactly its scores."""
    theirs = pipeline("text-classification", model=str(tiny_calibrated), device="cpu")
    ours = clearpipe.load(tiny_calibrated, dtype="float32", calibrated=False)
    kwargs = {} if top_k is clearpipe.BEST else {"top_k": top_k}
    for g, e in zip(ours(TEXTS, **kwargs), theirs(TEXTS, truncation=True, **kwargs), strict=True):
        _close(g, e)
