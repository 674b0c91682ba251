"""`clearpipe trace` end to end, as a user runs it (few runs: each one starts Python and torch)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from clearpipe.trace.record import json_schema
from cli.helpers import assert_user_error
from cli.helpers import run as run_cli


def run(*args: str):
    return run_cli("trace", *args, timeout=300)


@pytest.mark.slow
def test_json_and_html(tiny, tmp_path):
    page = tmp_path / "trace.html"
    model = str(tiny("bert", 3))
    result = run(
        "a premise 😀",
        "--pair",
        "a hypothesis",
        "--model",
        model,
        "--json",
        "--no-attributions",
        "--html",
        str(page),
    )
    assert result.returncode == 0, result.stderr
    trace = json.loads(result.stdout)  # nothing but the JSON on stdout
    jsonschema.Draft202012Validator(json_schema()).validate(trace)
    assert (trace["stages"][0]["text"], trace["stages"][0]["text_pair"]) == ("a premise 😀", "a hypothesis")
    assert trace["labels"] == ["LABEL_0", "LABEL_1", "LABEL_2"]
    assert trace["attributions"] is None
    html = page.read_text(encoding="utf-8")
    assert "a hypothesis" in html and "<svg" in html and trace["stages"][4]["label"] in html


def test_terminal_view_shows_every_stage(tiny):
    result = run("the film was fun", "--model", str(tiny("distilbert")), "--words")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for name in ("1 input", "2 tokenizer", "3 model", "4 activation", "5 prediction", "attributions"):
        assert name in out
    assert "[CLS] the film was fun [SEP]" in out
    assert "layer  1" in out and "layer  2" in out
    assert "softmax" in out and "completeness" in out


def test_mistakes_exit_2_with_one_line(tmp_path):
    missing = run("fun", "--model", str(tmp_path / "nope"))
    assert_user_error(missing, "no such model folder")
    assert len(missing.stderr.strip().splitlines()) == 1
