"""Long texts: chunk windows, their aggregation, and the "windows" key of the output."""

from __future__ import annotations

import numpy as np
import pytest

import clearpipe
from checkpoints import make_sensitive
from clearpipe import longtext
from clearpipe.postprocess import Activation, Predictions
from devices import GPU_TOLERANCE, GPUS

MAX_LENGTH = 12


@pytest.fixture(scope="module")
def chunked_bert(tiny, tmp_path_factory):
    """The tiny BERT with large random weights, so that different words get different labels."""
    return make_sensitive(tiny("bert", 2), tmp_path_factory.mktemp("sensitive-bert"), seed=0)


@pytest.fixture(scope="module")
def clf(chunked_bert):
    return clearpipe.load(chunked_bert, dtype="float32", max_length=MAX_LENGTH, long_text="chunk", stride=2)


def _windows_of(tokenizer, text: str) -> longtext.Windows:
    return longtext.tokenize_windows(tokenizer, [text], MAX_LENGTH, 2, True)


@pytest.mark.parametrize("words", [1, 9, 10, 11, 30, 55])
def test_windows_cover_the_text_within_max_length(clf, words):
    text = " ".join(["film"] * words)
    windows = _windows_of(clf.tokenizer, text)
    tokens = windows.tokenized.input_ids
    assert all(len(w) <= MAX_LENGTH for w in tokens)
    assert windows.counts.tolist() == [len(tokens)]
    # 10 text tokens per window, 2 of them shared with the previous window.
    assert len(tokens) == max(1, 1 + -(-(words - 10) // 8))
    body = [t for w in tokens for t in w[1:-1]]
    assert len(body) == words + 2 * (len(tokens) - 1)


def test_aggregation_mean_and_max_of_disagreeing_windows():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    windows = longtext.Windows(tokenized=None, owner=np.array([0, 0, 0, 1]), counts=np.array([3, 1]))
    mean = longtext.aggregate_windows(scores, windows, "mean")
    assert mean == pytest.approx(np.array([[1.4 / 3, 1.6 / 3], [0.6, 0.4]]))
    assert longtext.aggregate_windows(scores, windows, "max") == pytest.approx(
        np.array([[0.9, 0.8], [0.6, 0.4]])
    )


def _label_of(clf, word: str) -> int:
    return int(clf.predict([" ".join([word] * 10)]).best[0])


def test_a_text_whose_windows_disagree_gets_the_mean_of_its_windows(clf):
    words = [
        "good",
        "bad",
        "film",
        "boring",
        "fun",
        "awful",
        "great",
        "love",
        "hate",
        "plot",
        "worst",
        "best",
    ]
    by_label: dict[int, str] = {}
    for word in words:
        by_label.setdefault(_label_of(clf, word), word)
    assert len(by_label) == 2, "the test model should give the probe words both labels"
    first, second = by_label[0], by_label[1]
    # Three windows of 10 words, overlapping by 2: all-`first`, 2 `first` + 8 `second`, all-`second`.
    text = " ".join([first] * 10 + [second] * 16)
    windows = _windows_of(clf.tokenizer, text)
    assert windows.counts.tolist() == [3]
    per_window = clf.postprocess(clf.forward(clf.collate(windows.tokenized, range(3))))
    assert len({int(b) for b in per_window.best}) == 2  # the windows disagree
    got = clf([text, first], top_k=None)
    expected = per_window.scores.mean(axis=0)
    assert {r["label"]: r["score"] for r in got[0]} == pytest.approx(
        dict(zip(clf.labels, expected, strict=True))
    )
    assert all(r["windows"] == 3 for r in got[0])
    assert got[1][0]["windows"] == 1
    best = clf(text)
    assert best["label"] == clf.labels[int(expected.argmax())] and best["windows"] == 3


def test_short_texts_in_chunk_mode_equal_truncate_mode_plus_windows_key(chunked_bert, clf):
    truncating = clearpipe.load(chunked_bert, dtype="float32", max_length=MAX_LENGTH)
    texts = ["the film was good", ("a premise", "a hypothesis"), "bad"]
    plain = truncating(texts)
    chunked = clf(texts)
    assert all("windows" not in r for r in plain)
    for p, c in zip(plain, chunked, strict=True):
        assert c.pop("windows") == 1
        assert c == pytest.approx(p)


@pytest.mark.parametrize("device", GPUS)
def test_chunk_mode_on_the_gpu_matches_the_cpus(chunked_bert, clf, device):
    on_gpu = clearpipe.load(
        chunked_bert, dtype="float32", max_length=MAX_LENGTH, long_text="chunk", stride=2, device=device
    )
    texts = [" ".join(["good", "boring", "fun", "awful"] * n) for n in (1, 4, 9)] + ["bad"]
    for g, c in zip(on_gpu(texts, top_k=None), clf(texts, top_k=None), strict=True):
        assert [r["label"] for r in g] == [r["label"] for r in c]
        assert [r["windows"] for r in g] == [r["windows"] for r in c]
        assert [r["score"] for r in g] == pytest.approx([r["score"] for r in c], abs=GPU_TOLERANCE)


def test_truncate_mode_output_has_no_windows_key_for_long_texts(tiny):
    truncating = clearpipe.load(tiny("bert", 2), dtype="float32", max_length=MAX_LENGTH)
    assert set(truncating("film " * 50)) == {"label", "score"}
    assert Predictions(np.ones((1, 2)) / 2, ["a", "b"], Activation.SOFTMAX).to_output() == [
        {"label": "a", "score": 0.5}
    ]


def test_cli_long_text_chunk_reports_windows(tiny):
    import json
    import os
    import subprocess
    import sys

    args = ["classify", "--model", str(tiny("bert", 2)), "--max-length", str(MAX_LENGTH), "--json"]
    run = subprocess.run(
        [sys.executable, "-m", "clearpipe", *args, "--long-text", "chunk", "film " * 40, "bad"],
        capture_output=True,
        text=True,
        env=os.environ,
        check=True,
    )
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["windows"] for r in results] == [5, 1]
