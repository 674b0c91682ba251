"""Zero-shot by similarity: cosines of embeddings, softmax or sigmoid, ranked answers, checks."""

from __future__ import annotations

import numpy as np
import pytest

import clearpipe
from clearpipe.errors import InputError
from clearpipe.zeroshot import Label, Similarity, ZeroShotClassifier, load_embedder

TEXTS = ["the team lost the game", "a great new film , really fun", "stock price of the company"]


@pytest.fixture(scope="module")
def clf(tiny_encoder):
    return clearpipe.pipeline("zero-shot-classification", model=tiny_encoder, device="cpu", dtype="float32")


def expected(clf, texts, prompts, multi_label, described=False):
    sims = clf.embed(texts) @ clf.embed(prompts).T
    s = Similarity()
    if multi_label:
        return 1 / (1 + np.exp(-s.scale * (sims - s.threshold)))
    t = s.described_temperature if described else s.temperature
    z = np.exp(sims / t - (sims / t).max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


@pytest.mark.parametrize("multi_label", [False, True])
def test_scores_are_the_documented_function_of_cosines(clf, multi_label):
    assert isinstance(clf, ZeroShotClassifier)
    labels = ["sports", "film", "business"]
    got = clf.predict(TEXTS, labels, multi_label=multi_label).scores
    prompts = [clf.template.format(label) for label in labels]
    np.testing.assert_allclose(got, expected(clf, TEXTS, prompts, multi_label), atol=1e-5)
    if not multi_label:
        np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-9)


def test_the_answer_has_transformers_shape_and_order(clf):
    one = clf(TEXTS[0], candidate_labels=["sports", "film", "business"])
    assert set(one) == {"sequence", "labels", "scores"} and one["sequence"] == TEXTS[0]
    assert one["scores"] == sorted(one["scores"], reverse=True)
    assert sorted(one["labels"]) == ["business", "film", "sports"]
    many = clf(TEXTS, candidate_labels="sports,film")
    assert isinstance(many, list) and [m["sequence"] for m in many] == TEXTS
    assert clf([], candidate_labels="sports,film") == []


def test_descriptions_fill_the_template_names_fill_the_answer(clf):
    described = clf.predict(TEXTS, {"S": "sports", "F": "film"}, "It is {}.").scores
    # the descriptions' prompts, at the temperature of described label sets (they spread wider)
    np.testing.assert_allclose(
        described, expected(clf, TEXTS, ["It is sports.", "It is film."], False, described=True), atol=1e-5
    )
    assert Similarity().described_temperature < Similarity().temperature
    assert set(clf(TEXTS[0], {"S": "sports", "F": "film"})["labels"]) == {"S", "F"}


def test_label_embeddings_are_cached(tiny_encoder, monkeypatch):
    clf = ZeroShotClassifier(load_embedder(tiny_encoder, device="cpu", dtype="float32"))
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr(clf, "embedder", _Counting(clf.embedder, calls))
    for _ in range(3):
        clf(TEXTS, candidate_labels=["sports", "film"])
    clf(TEXTS, candidate_labels=["sports", "film"], multi_label=True)
    assert calls == [(clf.template.format("sports"), clf.template.format("film"))]
    clf(TEXTS, candidate_labels=["sports", "film"], hypothesis_template="It is {}.")
    assert len(calls) == 2


class _Counting:
    """An embedder that records which texts `embed` was asked for (label prompts only: the
    texts themselves go through `tokenize` and `pooled`)."""

    def __init__(self, embedder, calls):
        self._embedder, self._calls = embedder, calls

    def embed(self, texts):
        self._calls.append(tuple(texts))
        return self._embedder.embed(texts)

    def __getattr__(self, name):
        return getattr(self._embedder, name)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ({"candidate_labels": ["sports"]}, "needs at least 2 candidate labels.*got 1 \\('sports'\\)"),
        ({"candidate_labels": ["sports", ""]}, "candidate label 1 is empty"),
        ({"candidate_labels": "sports,film,sports"}, "candidate label 'sports' is given twice"),
        ({"candidate_labels": "sports,film", "hypothesis_template": "It is."}, r"needs one \{\} where"),
    ],
)
def test_bad_calls_are_one_line_input_errors(clf, call, message):
    with pytest.raises(InputError, match=message) as error:
        clf(TEXTS, **call)
    assert "\n" not in str(error.value)


def test_one_label_is_fine_when_labels_are_independent(clf):
    out = clf(TEXTS[0], candidate_labels=[Label("sports")], multi_label=True)
    assert out["labels"] == ["sports"] and 0 < out["scores"][0] < 1


def test_the_pipeline_refuses_options_zero_shot_does_not_take(tiny_encoder):
    with pytest.raises(InputError, match="not long_text"):
        clearpipe.pipeline("zero-shot-classification", model=tiny_encoder, long_text="chunk")


def test_the_default_encoder_reads_labels_offline(minilm_dir):
    clf = clearpipe.pipeline("zero-shot-classification", dtype="float32")
    assert clf.source == str(minilm_dir)
    out = clf(
        ["The striker scored twice in the final.", "Shares of the bank fell 5% after earnings."],
        candidate_labels="Sports,Business=business and finance news",
    )
    assert [o["labels"][0] for o in out] == ["Sports", "Business"]


def test_each_named_base_gets_the_scoring_measured_for_it(minilm_dir, tiny_encoder, tmp_path, monkeypatch):
    from clearpipe import bases
    from clearpipe.zeroshot.classifier import scoring_for
    from clearpipe.zeroshot.scoring import MEASURED

    assert scoring_for(str(minilm_dir)) == MEASURED["minilm-l6"] == Similarity()
    assert scoring_for("sentence-transformers/all-mpnet-base-v2") == MEASURED["mpnet-base"]
    assert MEASURED["mpnet-base"] != Similarity()
    # an installed mpnet-base is recognised by its folder, whatever path names it
    monkeypatch.setenv("CLEARPIPE_BASES", str(tmp_path))
    folder = tmp_path / bases.BASES["mpnet-base"].folder
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert scoring_for(str(tmp_path / "." / folder.name)) == MEASURED["mpnet-base"]
    # any other encoder gets the defaults
    assert scoring_for(str(tiny_encoder)) == Similarity()
    clf = clearpipe.pipeline("zero-shot-classification", model=tiny_encoder)
    assert clf.scoring == Similarity()
