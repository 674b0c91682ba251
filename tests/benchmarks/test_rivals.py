"""`benchmarks/rivals.py`: a rival whose package is missing is skipped with why, and the rivals'
batching hands back scores in input order. No rival runtime is needed: these are pure parts."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "rivals.py"
spec = importlib.util.spec_from_file_location("benchmark_rivals", SCRIPT)
rivals = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = rivals
spec.loader.exec_module(rivals)


@pytest.mark.parametrize(
    ("setting", "absent"), [("openvino-int8", "nncf"), ("ctranslate2-int8", "ctranslate2")]
)
def test_a_rival_without_its_package_names_the_package_and_the_extra(monkeypatch, setting, absent):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == absent else real(name))
    reason = rivals.missing(setting)
    # The missing packages lead the reason; others may be missing too where the bench extra is not installed.
    named = reason.split(" not installed")[0].split(", ")
    assert absent in named and "clearpipe[bench]" in reason


def test_every_rival_says_which_packages_it_needs():
    assert set(rivals.PACKAGES) == set(rivals.RIVALS)


def test_length_sorted_batches_come_back_in_input_order():
    lengths = [5, 1, 9, 3, 7, 2, 8]
    encodings = [SimpleNamespace(ids=list(range(n))) for n in lengths]
    seen = []

    def logits_of(batch):  # (B, 2): each row's own length, to find it again
        seen.append([len(e.ids) for e in batch])
        return np.array([[len(e.ids), -len(e.ids)] for e in batch], dtype=np.float32)

    out = rivals._in_order(encodings, 3, logits_of)
    assert out[:, 0].tolist() == lengths
    assert seen == [[1, 2, 3], [5, 7, 8], [9]]


def test_padded_batches_mask_the_padding_and_keep_token_types():
    encodings = [
        SimpleNamespace(ids=[101, 7, 102], type_ids=[0, 0, 0]),
        SimpleNamespace(ids=[101, 102], type_ids=[0, 1]),
    ]
    feeds = rivals._padded(encodings, with_types=True)
    assert feeds["input_ids"].tolist() == [[101, 7, 102], [101, 102, 0]]
    assert feeds["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert feeds["token_type_ids"].tolist() == [[0, 0, 0], [0, 1, 0]]
    assert "token_type_ids" not in rivals._padded(encodings, with_types=False)


def test_scores_are_softmax_or_sigmoid_of_the_logits():
    logits = np.array([[2.0, 0.0], [-1.0, 1.0]], dtype=np.float32)
    softmax = rivals._activate(logits, "softmax")
    assert np.allclose(softmax.sum(axis=1), 1.0) and softmax[0, 0] > 0.8
    assert np.allclose(rivals._activate(logits, "sigmoid"), 1 / (1 + np.exp(-logits)))
