"""recipes/soup.py: the mean of like students' weights, loadable as a checkpoint; unlike ones refused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

import clearpipe

SCRIPT = Path(__file__).resolve().parents[2] / "recipes" / "soup.py"
spec = importlib.util.spec_from_file_location("soup", SCRIPT)
soup = importlib.util.module_from_spec(spec)
spec.loader.exec_module(soup)


def student(tiny, folder: Path, seed: int, labels: int = 2) -> Path:
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(tiny("bert", labels), num_labels=labels)
    for p in model.parameters():  # each student its own weights
        p.data += torch.randn_like(p) * 0.1
    model.save_pretrained(folder)
    clearpipe.load(tiny("bert", labels)).tokenizer.save_pretrained(folder)
    return folder


def test_a_soup_is_the_mean_of_its_students_and_loads(tiny, tmp_path):
    a, b = student(tiny, tmp_path / "a", 1), student(tiny, tmp_path / "b", 2)
    soup.soup([a, b], tmp_path / "soup")
    wa, wb, mean = (load_file(str(f / "model.safetensors")) for f in (a, b, tmp_path / "soup"))
    for key in mean:
        torch.testing.assert_close(mean[key], (wa[key] + wb[key]) / 2)
    assert clearpipe.load(tmp_path / "soup")(["a text"])[0]["label"]


def test_students_with_other_labels_are_refused(tiny, tmp_path):
    a, b = student(tiny, tmp_path / "a", 1), student(tiny, tmp_path / "b", 2, labels=3)
    with pytest.raises(SystemExit, match="id2label differs"):
        soup.soup([a, b], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()
