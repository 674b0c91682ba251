"""`Classifier.trace`: the five stages, their shapes, spans, truncation, JSON schema and HTML page."""

from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from pathlib import Path

import jsonschema
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import clearpipe
from clearpipe.trace.html import to_html, write_html
from clearpipe.trace.record import SCHEMA_VERSION, json_schema
from devices import GPU_TOLERANCE, GPUS

KINDS = ["bert", "distilbert", "roberta"]
TEXT = "The naïve actor loved the café 😀 scenes!"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="module", params=KINDS)
def kind_clf(request, tiny):
    return request.param, clearpipe.load(tiny(request.param), device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def roberta_clf(tiny):
    return clearpipe.load(tiny("roberta"), device="cpu")


def validate(trace_dict: dict) -> None:
    jsonschema.Draft202012Validator(json_schema()).validate(trace_dict)


def test_five_stages_match_transformers(kind_clf):
    kind, clf = kind_clf
    t = clf.trace(TEXT, attributions=False)
    config = clf.model.config
    hidden = config.hidden_size
    tokens = t.tokenizer.tokens
    n = len(tokens)

    oracle_tok = AutoTokenizer.from_pretrained(clf.source)
    enc = oracle_tok(TEXT, return_tensors="pt")
    assert [tok.id for tok in tokens] == enc["input_ids"][0].tolist()
    assert t.tokenizer.shape == (1, n)
    assert t.tokenizer.has_token_type_ids is (kind == "bert")
    assert all((tok.type_id is None) is (kind != "bert") for tok in tokens)
    assert [tok.special for tok in tokens] == [True] + [False] * (n - 2) + [True]
    specials = {"bert": ("[CLS]", "[SEP]"), "distilbert": ("[CLS]", "[SEP]"), "roberta": ("<s>", "</s>")}
    assert (tokens[0].token, tokens[-1].token) == specials[kind]

    oracle = AutoModelForSequenceClassification.from_pretrained(clf.source, dtype=torch.float32).eval()
    with torch.no_grad():
        out = oracle(**enc, output_hidden_states=True)
    assert t.model.logits == pytest.approx(out.logits[0].tolist(), abs=1e-5)
    assert t.model.embedding_shape == (1, n, hidden)
    assert len(t.model.layers) == config.num_hidden_layers
    for layer, states in zip(t.model.layers, out.hidden_states[1:], strict=True):
        assert layer.shape == (1, n, hidden)
        assert layer.mean_norm == pytest.approx(float(states[0].norm(dim=-1).mean()), rel=1e-4)
        assert layer.first_attends is not None and len(layer.first_attends) == 3
        weights = [w for _, w in layer.first_attends]
        assert weights == sorted(weights, reverse=True) and 0 < sum(weights) <= 1 + 1e-6
        assert all(0 <= i < n for i, _ in layer.first_attends)
    assert t.model.attention == "eager"
    assert t.model.pooled_kind == ("pooler" if kind == "bert" else "first_token")
    assert t.model.pooled_shape == (1, hidden)
    assert t.model.logits_shape == (1, 2)
    # The traced call switches to eager attention for itself only.
    assert clf.model.config._attn_implementation == "sdpa"


def test_prediction_is_what_the_classifier_returns(kind_clf):
    _, clf = kind_clf
    t = clf.trace(TEXT, attributions=False)
    ranked = clf(TEXT, top_k=None)
    assert t.activation.probabilities == pytest.approx({r["label"]: r["score"] for r in ranked}, abs=1e-6)
    best = clf(TEXT)
    assert t.prediction.label == best["label"]
    assert t.prediction.score == pytest.approx(best["score"], abs=1e-6)
    assert t.labels[t.prediction.label_id] == t.prediction.label
    for stage in (t.input, t.tokenizer, t.model, t.activation, t.prediction):
        assert stage.time_ms >= 0


@pytest.mark.parametrize("device", GPUS)
def test_a_trace_on_the_gpu_matches_the_cpus(tiny, device):
    folder = tiny("bert", 2)
    on_gpu = clearpipe.load(folder, device=device, dtype="float32").trace(TEXT)
    on_cpu = clearpipe.load(folder, device="cpu", dtype="float32").trace(TEXT)
    assert [t.id for t in on_gpu.tokenizer.tokens] == [t.id for t in on_cpu.tokenizer.tokens]
    assert on_gpu.model.logits == pytest.approx(on_cpu.model.logits, abs=GPU_TOLERANCE)
    gpu_norms = [layer.mean_norm for layer in on_gpu.model.layers]
    assert gpu_norms == pytest.approx([layer.mean_norm for layer in on_cpu.model.layers], rel=1e-4)
    assert on_gpu.prediction.label == on_cpu.prediction.label
    gpu_attributions = [t.attribution for t in on_gpu.tokenizer.tokens]
    cpu_attributions = [t.attribution for t in on_cpu.tokenizer.tokens]
    assert None not in gpu_attributions
    assert gpu_attributions == pytest.approx(cpu_attributions, abs=1e-3)


def _wordpiece_form(chars: str) -> str:
    decomposed = unicodedata.normalize("NFD", chars.lower())
    return "".join(c for c in decomposed if unicodedata.category(c) != "Mn")


def test_spans_point_at_the_right_characters(kind_clf):
    kind, clf = kind_clf
    t = clf.trace(TEXT, attributions=False)
    tokens = [tok for tok in t.tokenizer.tokens if not tok.special]
    for tok in tokens:
        start, end = tok.span
        piece = TEXT[start:end]
        if kind == "roberta":
            # Byte-level BPE may split a character into several byte tokens; each covers it whole.
            assert piece.strip() == piece
        elif tok.token == "[UNK]":
            assert piece == "😀"
        else:
            assert _wordpiece_form(piece) == tok.token.removeprefix("##")
    emoji = TEXT.index("😀")
    covering = [tok for tok in tokens if tok.span[0] <= emoji < tok.span[1]]
    assert covering and all(TEXT[slice(*tok.span)] == "😀" for tok in covering)
    words = {w.text for w in clf.trace(TEXT).attributions.words}
    assert {"naïve", "café", "😀", "The", "scenes"} <= words


def test_every_character_of_an_emoji_run_is_covered(kind_clf):
    _, clf = kind_clf
    text = "😀🎉😀 Ça  déjà-vu…  👍🏽!"
    tokens = [tok for tok in clf.trace(text, attributions=False).tokenizer.tokens if not tok.special]
    covered = {i for tok in tokens for i in range(*tok.span)}
    assert covered == {i for i, c in enumerate(text) if not c.isspace()}
    for tok in tokens:
        piece = text[slice(*tok.span)]
        assert piece.strip() == piece
        # Only a byte-level space token ("Ġ", RoBERTa) may cover no character.
        assert piece or set(tok.token) == {"Ġ"}


def test_pair_tokens_know_their_segment(tiny):
    clf = clearpipe.load(tiny("bert"), device="cpu")
    t = clf.trace("a premise", pair="the hypothesis")
    segments = [tok.segment for tok in t.tokenizer.tokens]
    assert segments == [None, 0, 0, None, 1, 1, None]
    assert [tok.type_id for tok in t.tokenizer.tokens] == [0, 0, 0, 0, 1, 1, 1]
    pair_tokens = [tok for tok in t.tokenizer.tokens if tok.segment == 1]
    assert [t.input.pair[slice(*tok.span)] for tok in pair_tokens] == ["the", "hypothesis"]
    assert t.input.shape == (9, 14)


@pytest.mark.parametrize("kind", KINDS)
def test_empty_text(tiny, kind):
    clf = clearpipe.load(tiny(kind), device="cpu")
    t = clf.trace("")
    assert [tok.special for tok in t.tokenizer.tokens] == [True, True]
    assert t.tokenizer.shape == (1, 2) and t.tokenizer.kept_chars == [0]
    assert t.attributions.scores == [0.0, 0.0] and t.attributions.completeness.ok
    assert t.attributions.words == []
    validate(t.to_dict())


@pytest.mark.parametrize("kind", KINDS)
def test_truncation_says_where(tiny, kind):
    clf = clearpipe.load(tiny(kind), max_length=8, device="cpu")
    text = "the film was good and the actors were great but the plot was boring"
    t = clf.trace(text, attributions=False)
    assert t.tokenizer.truncated and t.tokenizer.shape == (1, 8)
    kept = t.tokenizer.kept_chars[0]
    last = t.tokenizer.tokens[-2]
    assert 0 < kept < len(text) and kept == last.span[1]
    assert not clf.trace("the film", attributions=False).tokenizer.truncated


def test_pair_truncation_keeps_both_segments(tiny):
    clf = clearpipe.load(tiny("bert"), max_length=10, device="cpu")
    text, pair = "the film was good and fun", "the actors were great but the plot was boring"
    t = clf.trace(text, pair=pair, attributions=False)
    assert t.tokenizer.truncated and t.tokenizer.shape == (1, 10)
    kept_text, kept_pair = t.tokenizer.kept_chars
    assert 0 < kept_text <= len(text) and 0 < kept_pair < len(pair)


@settings(max_examples=25, deadline=None)
@given(text=st.lists(st.sampled_from([*"abcé ïüß😀🎉 \t,.!", "film", "naïve "]), max_size=20).map("".join))
def test_spans_stay_inside_the_text(roberta_clf, text):
    t = roberta_clf.trace(text, attributions=False)
    starts = []
    for tok in t.tokenizer.tokens:
        if tok.special:
            continue
        start, end = tok.span
        assert 0 <= start <= end <= len(text)
        starts.append(start)
    assert starts == sorted(starts)


@pytest.mark.parametrize(
    ("num_labels", "problem_type", "function", "function_to_apply", "why"),
    [
        (3, None, "softmax", None, "single-label classification with 3 labels"),
        (3, "multi_label_classification", "sigmoid", None, "multi_label_classification"),
        (1, None, "sigmoid", None, "single output"),
        (1, "regression", "none", None, "regression"),
        (2, None, "sigmoid", "sigmoid", "chosen by the caller"),
    ],
)
def test_activation_says_why(tiny, num_labels, problem_type, function, function_to_apply, why):
    clf = clearpipe.load(tiny("bert", num_labels, problem_type), function_to_apply=function_to_apply)
    t = clf.trace("a good film")
    assert t.activation.function == function
    assert why in t.activation.reason
    assert len(t.activation.probabilities) == num_labels
    assert t.attributions.target == t.prediction.label_id
    validate(t.to_dict())


@pytest.mark.parametrize("kind", KINDS)
def test_json_follows_the_documented_schema(tiny, kind):
    clf = clearpipe.load(tiny(kind), device="cpu")
    for t in (clf.trace(TEXT), clf.trace(TEXT, pair="good film", attributions=False)):
        d = t.to_dict()
        validate(d)
        assert d["schema_version"] == SCHEMA_VERSION
        assert [s["name"] for s in d["stages"]] == ["input", "tokenizer", "model", "activation", "prediction"]
    broken = clf.trace(TEXT).to_dict()
    del broken["stages"][1]["tokens"][0]["span"]
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    broken = clf.trace(TEXT).to_dict()
    broken["stages"][2]["surprise"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_the_activation_stage_shows_the_saved_temperature(tiny_calibrated):
    clf = clearpipe.load(tiny_calibrated, device="cpu")
    t = clf.trace(TEXT, attributions=False)
    assert t.activation.temperature == {"method": "temperature", "temperature": 2.5}
    assert t.prediction.score == pytest.approx(clf(TEXT)["score"], abs=1e-6)  # the calibrated score
    d = t.to_dict()
    validate(d)
    assert d["stages"][3]["temperature"] == {"method": "temperature", "temperature": 2.5}
    assert d["stages"][3]["output"].startswith("temperature-scaled softmax scores")
    assert "divided by the saved temperature 2.5000" in to_html(t)
    raw = clearpipe.load(tiny_calibrated, device="cpu", calibrated=False).trace(TEXT, attributions=False)
    assert raw.activation.temperature is None and raw.to_dict()["stages"][3]["temperature"] is None
    assert raw.prediction.label == t.prediction.label


def test_html_is_self_contained(tiny):
    page = to_html(clearpipe.load(tiny("bert")).trace('<b>"quoted"</b> & 😀', pair="x"))
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert not re.search(r"https?://|<script|<link|<img|@import|url\(", page)
    assert "&lt;b&gt;&quot;quoted&quot;&lt;/b&gt; &amp; 😀" in page


def test_html_renders_in_chromium(tiny, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    clf = clearpipe.load(tiny("bert"), device="cpu")
    t = clf.trace("the film was naïve 😀 but fun", pair="good")
    page = write_html(t, tmp_path / "trace.html")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "trace.png"
    screenshot.unlink(missing_ok=True)
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1000,1400",
    ]

    def run(*extra: str, profile: str) -> str:
        args = [chromium, *flags, f"--user-data-dir={tmp_path / profile}", *extra, page.as_uri()]
        return subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout

    dom = run("--dump-dom", profile="dom")
    for section in ("input", "tokenizer", "model", "activation", "prediction", "attributions"):
        assert f'<section id="{section}">' in dom
    assert f"{t.prediction.label} " in dom and f"{t.prediction.score:.4f}" in dom
    assert dom.count('class="tok special"') == 3
    assert len(re.findall(r'<rect class="bar"', dom)) == 1 + len(t.model.layers)
    assert "naïve" in dom and "😀" in dom

    run(f"--screenshot={screenshot}", profile="shot")
    from PIL import Image

    with Image.open(screenshot) as image:
        assert image.size == (1000, 1400)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    # A blank or broken page has a handful of colours; text, tokens and the chart give many.
    assert colours is not None and len(colours) > 50


def test_html_write_refuses_a_missing_folder_and_keeps_old_pages(tiny, tmp_path):
    t = clearpipe.load(tiny("bert")).trace("fine", attributions=False)
    with pytest.raises(clearpipe.InputError, match="does not exist"):
        write_html(t, tmp_path / "missing" / "t.html")
    page = tmp_path / "t.html"
    page.write_text("old", encoding="utf-8")
    write_html(t, page)
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["t.html"]  # no temporary file left behind


def test_trace_takes_one_text(tiny):
    clf = clearpipe.load(tiny("bert"))
    for text, pair in ((["a", "b"], None), (None, None), ("a", 3)):
        with pytest.raises(clearpipe.InputError, match="one text and an optional pair"):
            clf.trace(text, pair=pair)
