"""`benchmarks/ner_speed.py`: the texts it builds from a CoNLL file, and a whole run on a tiny
random token classifier, where clearpipe in fp32 must find exactly transformers' entities."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import checkpoints

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "ner_speed.py"
spec = importlib.util.spec_from_file_location("benchmark_ner_speed", SCRIPT)
bench = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bench
spec.loader.exec_module(bench)

SENTENCES = [
    [("the", "O"), ("film", "B-MISC"), ("was", "O"), ("great", "O"), (".", "O")],
    [("Ada", "B-PER"), ("Lovelace", "I-PER"), ("loved", "O"), ("this", "O"), ("movie", "O")],
    [("not", "O"), ("a", "O"), ("boring", "O"), ("story", "O")],
    [("the", "O"), ("actors", "O"), ("in", "O"), ("London", "B-LOC"), ("were", "O"), ("fun", "O")],
    [("best", "O"), ("scene", "O"), ("ever", "O"), ("!", "O")],
    [("I", "O"), ("hated", "O"), ("the", "O"), ("plot", "O"), ("of", "O"), ("Reuters", "B-ORG")],
]


def conll(folder: Path) -> Path:
    """A small CoNLL file: -DOCSTART-, then the sentences with blank lines between them."""
    lines = ["-DOCSTART- -X- -X- O", ""]
    for sentence in SENTENCES:
        lines += [f"{word} NN I-NP {tag}" for word, tag in sentence] + [""]
    path = folder / "test.txt"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_each_sentence_is_its_words_joined_by_single_spaces_and_a_sample_keeps_file_order(tmp_path):
    path = conll(tmp_path)
    texts = bench.read_texts(path, None)
    assert texts[1] == "Ada Lovelace loved this movie" and len(texts) == len(SENTENCES)
    sample = bench.read_texts(path, 3)
    assert len(sample) == 3 and sorted(sample, key=texts.index) == sample


def test_agreement_compares_entity_groups_and_offsets_per_sentence():
    per = {"entity_group": "PER", "start": 0, "end": 3, "score": 0.9, "word": "Ada"}
    moved = per | {"end": 4}
    assert bench.agreement([[per], []], [[per | {"score": 0.5}], []]) == 1.0
    assert bench.agreement([[per], [per]], [[moved], [per]]) == 0.5


@pytest.mark.slow  # a subprocess that imports torch and transformers, loads five models: ~7 s
def test_a_run_on_a_tiny_token_classifier_agrees_with_transformers_in_fp32(tmp_path):
    base = checkpoints.build(tmp_path / "base", "bert")
    model = bench.build_random_ner(str(base), tmp_path / "ner")
    out = tmp_path / "run.json"
    command = [sys.executable, str(SCRIPT), "--model", str(model), "--data", str(conll(tmp_path))]
    command += ["--repeat", "1", "--threads", "1", "--batch-sizes", "1", "4", "--dtypes", "float32"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run([*command, "--json", str(out)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    run = json.loads(out.read_text(encoding="utf-8"))
    results = run["results"]
    assert set(results) == {
        "clearpipe float32",
        "pipeline float32 b1",
        "pipeline float32 b4",
        "pipeline bfloat16 b1",
        "pipeline bfloat16 b4",
    }
    assert run["sentences"] == len(SENTENCES) and run["reference"] == "pipeline float32 b1"
    assert results["clearpipe float32"]["agreement"] == 1.0
    assert results["clearpipe float32"]["entities_per_sentence"] > 0  # the head does find entities
    assert run["best_rival"] in results and "/ best rival:" in done.stdout
    assert "CPU: " in done.stdout and "transformers " in done.stdout
