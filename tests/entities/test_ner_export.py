"""`clearpipe export` of a token-classification (NER) model: the per-token logits graph, guarded
by token label agreement with fp32, and the export run by `clearpipe.load` and `clearpipe.lite`
(torch-free) with the torch model's entities."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import clearpipe
from clearpipe import lite
from clearpipe.engine.samples import builtin_sample
from clearpipe.entities import TokenClassifier
from clearpipe.errors import InputError
from clearpipe.onnx.agreement import AccuracyError, compare_tokens, require
from clearpipe.onnx.export import check_export, export_onnx
from cli.helpers import SRC, run
from ner_checkpoints import build_ner

TEXTS = [
    "the film was great, cafe worldly market price!",
    "Stock price of the new company in the world market",
    "a",
    "",
    "héllo wörld emoji ☃ unknownwords",
    "naive actors loved the resume of that boring scene. " * 8,  # longer than one window
]
WORDS = [["new", "company", "in", "world", "market", "!"]]
CHECK = builtin_sample(["B-PER"])[1][:40]


def without_scores(found: list[list[dict]]) -> list[list[dict]]:
    return [[{k: v for k, v in e.items() if k != "score"} for e in one] for one in found]


def scores(found: list[list[dict]]) -> np.ndarray:
    return np.array([e["score"] for one in found for e in one])


@pytest.fixture(scope="module", params=["bert", "roberta"])
def exported(request, ner_bert, ner_roberta, tmp_path_factory):
    source = ner_bert if request.param == "bert" else ner_roberta
    folder = tmp_path_factory.mktemp("ner-onnx") / request.param
    report = export_onnx(str(source), folder, texts=CHECK, check_name="built-in news sample")
    return source, folder, report


def test_the_guard_counts_tokens_and_texts(exported):
    _, folder, report = exported
    assert report.agreement.unit == "tokens" and report.agreement.label_agreement == 1.0
    assert report.agreement.rows > len(CHECK) and report.agreement.same_entities == 1.0
    assert json.loads((folder / "clearpipe_export.json").read_text())["agreement"]["unit"] == "tokens"


def test_both_loaders_give_the_torch_models_entities(exported):
    source, folder, _ = exported
    torch_model = clearpipe.load(source, dtype="float32", device="cpu")
    on_export, on_lite = clearpipe.load(folder), lite.load(folder)
    assert isinstance(on_export, TokenClassifier) and on_export.settings.dtype == "onnx"
    assert type(on_lite).__name__ == "LiteTokenClassifier"
    for strategy in ("word", "none", "simple", "average"):
        expected = torch_model(TEXTS, aggregation_strategy=strategy)
        assert any(expected)
        for ours in (
            on_export(TEXTS, aggregation_strategy=strategy),
            on_lite(TEXTS, aggregation_strategy=strategy),
        ):
            assert without_scores(ours) == without_scores(expected)
            assert scores(ours) == pytest.approx(scores(expected), abs=1e-4)
    assert on_lite.tokenize(TEXTS).inputs == torch_model.tokenize(TEXTS).inputs
    expected_tags = torch_model.predict_word_tags(WORDS)
    assert on_export.predict_word_tags(WORDS) == on_lite.predict_word_tags(WORDS) == expected_tags


def test_lite_runs_an_ner_export_without_torch(exported):
    _, folder, _ = exported
    code = (
        "import sys, json; from clearpipe import lite; ner = lite.load(sys.argv[1]); "
        "print(json.dumps([ner(sys.argv[2]), sorted(m for m in ('torch', 'transformers') if m in sys.modules)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(folder), TEXTS[0]],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": SRC, "HF_HUB_OFFLINE": "1"},
    )
    found, heavy = json.loads(out.stdout)
    assert heavy == [] and without_scores([found]) == without_scores([lite.load(folder)(TEXTS[0])])


def test_int8_onnx_export_is_checked_and_runs(ner_bert, tmp_path):
    report = export_onnx(
        str(ner_bert), tmp_path / "int8", texts=CHECK, check_name="news", quantize="int8", threshold=0.9
    )
    assert report.agreement.unit == "tokens" and report.agreement.label_agreement >= 0.9
    found = lite.load(tmp_path / "int8")(TEXTS)
    assert len(found) == len(TEXTS)


def test_an_export_that_disagrees_is_refused(exported, tmp_path):
    source, folder, _ = exported
    other = build_ner(tmp_path / "other", "roberta" if "roberta" in str(source) else "bert", seed=1)
    with pytest.raises(AccuracyError, match=r"label agreement .* tokens.*under the required 99\.00%"):
        check_export(clearpipe.load(other, dtype="float32", device="cpu"), folder, CHECK, 0.99)


def test_compare_tokens_counts_every_token():
    same = np.eye(3, dtype=np.float32)
    flipped = same[[1, 0, 2]]
    agreement = compare_tokens([same, same[:1]], [flipped, same[:1]], [False, True])
    assert (agreement.rows, agreement.label_agreement, agreement.same_entities) == (4, 0.5, 0.5)
    with pytest.raises(AccuracyError, match=r"50\.00% over 4 tokens"):
        require(agreement, 0.99, "the export")


def test_static_int8_openvino_is_refused_for_ner(ner_bert, tmp_path):
    pytest.importorskip("nncf")
    with pytest.raises(InputError, match="--format onnx --quantize int8"):
        export_onnx(
            str(ner_bert), tmp_path / "ov", texts=CHECK, check_name="x", quantize="int8", format="openvino"
        )


def test_export_and_classify_lite_on_the_command_line(ner_bert, tmp_path):
    folder = tmp_path / "onnx"
    made = run("export", ner_bert, "--output", folder, timeout=300)
    assert made.returncode == 0, made.stderr
    assert "tokens, identical entities in" in made.stdout
    shown = run("classify", *TEXTS[:2], "--model", folder, "--lite", "--json")
    assert shown.returncode == 0, shown.stderr
    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    assert without_scores(lines) == without_scores(clearpipe.load(ner_bert, dtype="float32")(TEXTS[:2]))
    traced = run("trace", TEXTS[0], "--model", folder, "--json")
    assert traced.returncode == 0, traced.stderr
    data = json.loads(traced.stdout)
    assert data["stages"][2]["dtype"] == "onnx" and data["entities"] == clearpipe.load(folder)(TEXTS[0])
