"""The embedded English NER model: present, half precision, tagged, plain transformers runs it the
same, and its CoNLL-2003 test figure is the one its recipe recorded."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

import clearpipe
from clearpipe.loading import DEFAULT_NER_DIR
from clearpipe.training.ner.evaluation import evaluate_tagger, words_tagger
from clearpipe.training.ner.read import read_ner

TAGS = {"O", *(f"{p}-{t}" for p in "BI" for t in ("PER", "ORG", "LOC", "MISC"))}
TEXTS = [
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday.",
    "Shares of Microsoft rose 3 percent on the New York Stock Exchange.",
    "Manchester United beat Arsenal 2-1 at Old Trafford.",
]


def test_shipped_files_and_dtype():
    for name in ("config.json", "model.safetensors", "tokenizer.json", "README.md", "metrics.json"):
        assert (DEFAULT_NER_DIR / name).is_file(), name
    with safe_open(DEFAULT_NER_DIR / "model.safetensors", "pt") as weights:
        dtypes = {str(weights.get_slice(key).get_dtype()) for key in weights.keys()}  # noqa: SIM118 (not a dict)
    assert dtypes == {"F16"}
    config = json.loads((DEFAULT_NER_DIR / "config.json").read_text())
    assert set(config["id2label"].values()) == TAGS
    assert config["dtype"] == "float32"
    card = (DEFAULT_NER_DIR / "README.md").read_text()
    assert "Reuters" in card and "research use" in card


def test_default_pipeline_finds_people_and_places():
    ner = clearpipe.pipeline("ner")
    found = [(e["entity_group"], e["word"]) for e in ner(TEXTS[0])]
    assert ("PER", "angela merkel") in found or ("PER", "Angela Merkel") in found
    assert any(kind == "LOC" and word.lower() == "paris" for kind, word in found)
    entity = ner(TEXTS[0])[0]
    assert TEXTS[0][entity["start"] : entity["end"]].lower() == entity["word"].lower()


def test_plain_transformers_gives_the_same_entities():
    from transformers import pipeline

    pipe = pipeline(
        "token-classification", model=str(DEFAULT_NER_DIR), aggregation_strategy="first", device="cpu"
    )
    assert pipe.model.dtype == torch.float32
    ours = clearpipe.pipeline("ner", aggregation_strategy="first", dtype="float32")
    for text in TEXTS:
        theirs = [(e["entity_group"], e["start"], e["end"]) for e in pipe(text)]
        assert [(e["entity_group"], e["start"], e["end"]) for e in ours(text)] == theirs
        assert theirs


@pytest.mark.slow
def test_conll_test_f1_is_the_recorded_one(shared_data):
    sentences = read_ner(shared_data / "conll2003" / "test.txt").sentences
    tagger = words_tagger(clearpipe.pipeline("ner").predict_word_tags)
    result = evaluate_tagger(tagger, sentences)
    shipped = json.loads((DEFAULT_NER_DIR / "metrics.json").read_text())["test"]["overall"]["f1"]
    # Recorded in one number format on one CPU; here the default dtype (bf16 where the CPU has it).
    assert result.f1 == pytest.approx(shipped, abs=0.003)


def test_ner_names_the_embedded_model_unless_a_folder_has_that_name(tmp_path, monkeypatch, ner_bert):
    assert clearpipe.load("ner").source == str(DEFAULT_NER_DIR)
    monkeypatch.chdir(tmp_path)
    shutil.copytree(ner_bert, tmp_path / "ner")
    assert clearpipe.load("ner").source == str((tmp_path / "ner").resolve())


def test_the_cli_marks_entities_with_the_embedded_model():
    result = subprocess.run(
        [sys.executable, "-m", "clearpipe", "classify", "--model", "ner", "--json", TEXTS[0]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    entities = json.loads(result.stdout.splitlines()[0])  # one JSON list of entities per text
    assert any(e["entity_group"] == "PER" for e in entities)
