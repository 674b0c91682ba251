"""`clearpipe trace` and `/explain`-style traces on exported folders: the graph's logits and the
stages an export can show, a trace that says what needs the torch model, and no traceback."""

from __future__ import annotations

import json

import jsonschema
import pytest

import clearpipe
from checkpoints import MIXED_TEXTS as TEXTS
from clearpipe.trace.record import GRAPH_ONLY, json_schema
from cli.helpers import run


@pytest.mark.parametrize("export", ["onnx_export", "openvino_int8_export"])
def test_a_trace_of_an_export_shows_its_logits_and_says_what_needs_torch(export, request):
    clf = clearpipe.load(request.getfixturevalue(export))
    for text in TEXTS[:6]:
        trace = clf.trace(text)
        expected = clf.predict([text])
        assert trace.prediction.label == expected.to_output()[0]["label"]
        assert list(trace.activation.probabilities.values()) == pytest.approx(expected.scores[0].tolist())
        assert trace.model.layers == [] and trace.model.unavailable == GRAPH_ONLY
        assert trace.attributions is None
        data = trace.to_dict()
        jsonschema.Draft202012Validator(json_schema()).validate(data)
        assert data["unavailable"][0]["why"] == GRAPH_ONLY
        assert trace.tokenizer.tokens[0].token == "[CLS]"


@pytest.mark.slow
@pytest.mark.parametrize("export", ["onnx_export", "openvino_int8_export"])
def test_trace_on_the_command_line_runs_on_an_export(export, request, tmp_path):
    folder = request.getfixturevalue(export)
    shown = run("trace", "--model", folder, "a fine film", "--html", tmp_path / "t.html")
    assert shown.returncode == 0, shown.stderr
    assert "exported graph" in shown.stdout and "need the torch model" in shown.stdout.replace("\n", " ")
    assert "exported graph" in (tmp_path / "t.html").read_text(encoding="utf-8")
    as_json = run("trace", "--model", folder, "a fine film", "--json")
    assert as_json.returncode == 0, as_json.stderr
    jsonschema.Draft202012Validator(json_schema()).validate(json.loads(as_json.stdout))
