"""Run every code example in README.md, as a reader would, in a scratch folder.

`python` blocks run in one interpreter, in order; `console` blocks run line by line in bash
(`$ ` prompts), and must exit 0. `sh` blocks are the setup commands (`make demo`, `make test`),
which are this very suite's entry point and are not re-run here. The scratch folder holds the
files the examples name: reviews.csv, train.csv, test.csv, heldout.csv, and ./base-model, a tiny random BERT
encoder standing in for a real base checkpoint.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import BertConfig, BertModel, BertTokenizer

from cli.helpers import env

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.M | re.S)
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "src" / "clearpipe" / "default_model" / "config.json"

pytestmark = pytest.mark.skipif(
    not DEFAULT_MODEL.is_file(), reason="the README's examples use the embedded default model"
)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCK.findall(README.read_text(encoding="utf-8")) if lang == language]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory, shared_data) -> Path:
    folder = tmp_path_factory.mktemp("readme")
    rows = (shared_data / "sst2" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]
    sample = [line.split("\t") for line in rows[:180]]
    names = {"0": "negative", "1": "positive"}
    parts = (("train.csv", sample[:80]), ("test.csv", sample[80:120]), ("heldout.csv", sample[120:]))
    for name, part in parts:
        with open(folder / name, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            writer.writerows([text.strip(), names[label]] for text, label in part)
    with open(folder / "reviews.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review"])
        writer.writerows([i, text.strip()] for i, (text, _) in enumerate(sample[:40]))
    _tiny_base(folder / "base-model", sample)
    return folder


def _tiny_base(folder: Path, sample: list[list[str]]) -> None:
    words = sorted({w for text, _ in sample for w in text.split()})
    folder.mkdir()
    vocab = folder / "vocab.txt"
    vocab.write_text(
        "\n".join(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words])), encoding="utf-8"
    )
    tokenizer = BertTokenizer(vocab=str(vocab))
    tokenizer.model_max_length = 128
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def test_readme_has_examples():
    assert blocks("python") and blocks("console")


@pytest.mark.slow
def test_python_examples_run(scratch):
    program = "\n\n".join(blocks("python"))
    result = subprocess.run(
        [sys.executable, "-c", program], cwd=scratch, env=env(), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr


def test_console_servers_run_in_the_background():
    # A server started in the foreground never returns, and its block would hang until the
    # timeout; name the line instead.
    commands = [
        line[2:] for block in blocks("console") for line in block.splitlines() if line.startswith("$ ")
    ]
    foreground = [c for c in commands if c.startswith("clearpipe serve") and not c.rstrip().endswith("&")]
    assert not foreground, f"README starts a server in the foreground: {foreground}"


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(blocks("console"))))
def test_console_examples_run(scratch, index):
    commands = [line[2:] for line in blocks("console")[index].splitlines() if line.startswith("$ ")]
    # Background jobs (the server example) are stopped when the block ends.
    script = "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + "\n".join(commands)
    bin_dir = str(Path(sys.executable).parent)
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=scratch,
        env={**env(), "PATH": bin_dir + ":" + env()["PATH"]},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{commands}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
