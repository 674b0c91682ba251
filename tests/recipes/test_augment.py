"""recipes/augment.py: word-replacement neighbours come from the teacher's embeddings; copies are
unlabelled, one per kind and row of six words or more, and never repeat their row."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers

SCRIPT = Path(__file__).resolve().parents[2] / "recipes" / "augment.py"
spec = importlib.util.spec_from_file_location("augment", SCRIPT)
augment = importlib.util.module_from_spec(spec)
spec.loader.exec_module(augment)

# Two clusters in the embedding space: nearest neighbours are known by construction.
VECTORS = {
    "[UNK]": [0.0, 0.0, 1.0],
    "good": [1.0, 0.1, 0.0],
    "great": [1.0, 0.0, 0.0],
    "fine": [0.8, 0.3, 0.0],
    "bad": [-1.0, 0.1, 0.0],
    "awful": [-1.0, 0.0, 0.0],
    "poor": [-0.8, 0.3, 0.0],
    "##ish": [1.0, 0.1, 0.0],
}


def teacher(folder: Path) -> Path:
    folder.mkdir()
    vocab = {word: i for i, word in enumerate(VECTORS)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(folder / "tokenizer.json"))
    weights = torch.tensor(list(VECTORS.values())) * 3 + 1  # an offset the centring removes
    save_file({"encoder.embeddings.word_embeddings.weight": weights}, str(folder / "model.safetensors"))
    return folder


def test_neighbours_are_the_nearest_training_words_in_the_teachers_embeddings(tmp_path):
    words = {"good", "great", "fine", "bad", "awful", "poor", "film", "2002", "##ish"}
    table = augment.neighbours(teacher(tmp_path / "t"), words, k=2)
    assert table["good"] == ["great", "fine"]
    assert table["awful"] == ["bad", "poor"]
    # Words outside the vocabulary ("film") or not alphabetic ("2002", "##ish") take no part.
    assert set(table) == {"good", "great", "fine", "bad", "awful", "poor"}


def test_a_replacement_copy_always_differs_from_its_row():
    table = {"good": ["great"], "film": ["movie"]}
    for seed in range(20):
        copy = augment.replace_words(["a", "good", "film", "indeed"], table, random.Random(seed), rate=0.0)
        assert copy in {"a great film indeed", "a good movie indeed"}
    assert augment.replace_words(["no", "match", "here"], table, random.Random(0)) == "no match here"


def test_write_makes_unlabelled_copies_of_long_rows_and_keeps_an_existing_file(tmp_path):
    train = tmp_path / "train.tsv"
    train.write_text("sentence\tlabel\na good film and a bad one\t1\ntoo short\t0\n", encoding="utf-8")
    out = augment.write(train, tmp_path / "aug.tsv", 2, 1, teacher(tmp_path / "t"))
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "sentence" and len(lines) == 1 + 3
    assert all("\t" not in line for line in lines)
    replaced = lines[3].split()
    assert len(replaced) == 7 and replaced != ["a", "good", "film", "and", "a", "bad", "one"]
    before = out.read_text(encoding="utf-8")
    augment.write(train, out, 5, 5, None)  # exists: kept, so a resumed run reuses its teacher logits
    assert out.read_text(encoding="utf-8") == before


def test_one_more_replacement_copy_extends_the_rows_of_a_run_with_fewer(tmp_path):
    # Copy-major order: the rows (and so the teacher logits cached for them) of a run with one
    # replacement copy are the first rows of a run with two.
    train = tmp_path / "train.tsv"
    rows = ["a good film and a bad one", "a great film and a poor one", "good good bad bad fine fine"]
    train.write_text("sentence\tlabel\n" + "".join(f"{r}\t1\n" for r in rows), encoding="utf-8")
    folder = teacher(tmp_path / "t")
    one = augment.write(train, tmp_path / "one.tsv", 1, 1, folder).read_text(encoding="utf-8")
    two = augment.write(train, tmp_path / "two.tsv", 1, 2, folder).read_text(encoding="utf-8")
    assert two.startswith(one) and len(two.splitlines()) == len(one.splitlines()) + len(rows)
