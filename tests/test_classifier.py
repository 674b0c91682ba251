import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel

import clearpipe
from clearpipe.errors import CheckpointError, InputError
from clearpipe.postprocess import Activation, Predictions
from clearpipe.preprocess import Encoded


@pytest.fixture(scope="module")
def clf(tiny_bert):
    return clearpipe.load(tiny_bert, device="cpu")


def test_stages_have_typed_results(clf):
    encoded = clf.preprocess(["the film was good", "bad"])
    assert isinstance(encoded, Encoded)
    assert encoded.input_ids.shape == encoded.attention_mask.shape == encoded.token_type_ids.shape
    assert encoded.lengths == [6, 3]
    assert encoded.attention_mask.sum(dim=1).tolist() == [6, 3]
    logits = clf.forward(encoded)
    assert logits.shape == (2, 2) and logits.dtype == torch.float32
    predictions = clf.postprocess(logits)
    assert isinstance(predictions, Predictions)
    assert np.allclose(predictions.scores.sum(axis=1), 1.0)
    assert predictions.to_output() == clf(["the film was good", "bad"])


def test_distilbert_gets_no_token_type_ids(tiny):
    encoded = clearpipe.load(tiny("distilbert", 2)).preprocess(["a good film"])
    assert encoded.token_type_ids is None


def test_empty_and_whitespace_texts_are_classified(clf):
    results = clf(["", "   ", "\n"])
    assert [set(r) for r in results] == [{"label", "score"}] * 3


def test_million_character_text_is_truncated_and_flagged(clf):
    huge = "good " * 200_000
    encoded = clf.preprocess([huge, "bad"])
    assert encoded.truncated == [True, False]
    assert encoded.lengths[0] == clf.max_length
    assert clf(huge)["label"] in clf.labels


def test_empty_list_gives_empty_result(clf):
    assert clf([]) == []
    assert clf([], top_k=None) == []


def test_none_item_names_its_index(clf):
    with pytest.raises(InputError, match="input 2 is None"):
        clf(["a", "b", None])


def test_top_k_is_validated_and_capped(clf):
    assert len(clf("good", top_k=10)) == 2
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(InputError, match="top_k"):
            clf("good", top_k=bad)


def test_function_to_apply_is_validated(clf):
    with pytest.raises(InputError, match="function_to_apply"):
        clf("good", function_to_apply="relu")
    raw = clf("good", top_k=None, function_to_apply="none")
    probs = clf("good", top_k=None, function_to_apply="softmax")
    assert sum(p["score"] for p in probs) == pytest.approx(1.0)
    assert {r["label"] for r in raw} == {p["label"] for p in probs}


def test_default_activation_follows_checkpoint(tiny):
    assert clearpipe.load(tiny("bert", 3)).settings.activation is Activation.SOFTMAX
    assert clearpipe.load(tiny("bert", 1)).settings.activation is Activation.SIGMOID
    multi = clearpipe.load(tiny("bert", 3, "multi_label_classification"))
    assert multi.settings.activation is Activation.SIGMOID


def test_labels_rename_generic_names(tiny):
    clf = clearpipe.load(tiny("bert", 2), labels=["neg", "pos"])
    assert clf("good")["label"] in {"neg", "pos"}
    with pytest.raises(InputError, match="labels has 3 names but the model has 2 outputs"):
        clearpipe.load(tiny("bert", 2), labels=["a", "b", "c"])


def test_max_length_is_checked(tiny_bert):
    assert clearpipe.load(tiny_bert, max_length=8)("good " * 50) is not None
    with pytest.raises(InputError, match="model's limit of 64"):
        clearpipe.load(tiny_bert, max_length=1000)


def test_folder_without_config_lists_what_it_found(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"no config.json \(found: weights.bin\)"):
        clearpipe.load(tmp_path)


def test_checkpoint_without_classification_head_is_refused(tmp_path):
    BertModel(
        BertConfig(
            vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=1, intermediate_size=8
        )
    ).save_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match=r"no trained sequence-classification head.*BertModel"):
        clearpipe.load(tmp_path)


def test_missing_folder_and_offline_hub_id(tmp_path):
    with pytest.raises(CheckpointError, match="no such model folder"):
        clearpipe.load(str(tmp_path / "nope") + "/")
    with pytest.raises(CheckpointError) as info:
        clearpipe.load("some-org/some-model-that-is-not-cached")
    message = str(info.value)
    assert "some-org/some-model-that-is-not-cached" in message
    assert "searched the cache at" in message and "local checkpoint folder" in message


def test_unavailable_device_is_refused(tiny_bert):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InputError, match="CUDA is not available"):
        clearpipe.load(tiny_bert, device="cuda")


def test_pipeline_is_a_drop_in(tiny_bert):
    clf = clearpipe.pipeline("sentiment-analysis", model=tiny_bert)
    assert clf("good")["label"] in {"negative", "positive"}
    with pytest.raises(InputError, match="unsupported task"):
        clearpipe.pipeline("summarization", model=tiny_bert)


# Trust: a saved temperature, thresholds that decide, min_score ----------------------------------
def test_a_saved_temperature_changes_scores_never_labels(tiny_calibrated):
    texts = ["the film was good", "bad", "a really boring story"]
    calibrated = clearpipe.load(tiny_calibrated, dtype="float32")
    raw = clearpipe.load(tiny_calibrated, dtype="float32", calibrated=False)
    ours, theirs = calibrated(texts, top_k=None), raw(texts, top_k=None)
    assert [[r["label"] for r in row] for row in ours] == [[r["label"] for r in row] for row in theirs]
    logits = raw.logits(raw.tokenize(texts))
    assert np.allclose(calibrated.predict(texts).scores, raw.postprocess(logits / 2.5).scores)
    assert "Temperature(value=2.5" in repr(calibrated) and "Temperature" not in repr(raw)
    # "none" asks for the logits themselves: no temperature.
    assert np.allclose(calibrated.predict(texts, function_to_apply="none").scores, logits)


def test_min_score_marks_results_not_decided(tiny_bert):
    clf = clearpipe.load(tiny_bert)
    plain = clf(["the film was good", "bad"])
    undecided = clf(["the film was good", "bad"], min_score=1.0)
    assert [r["label"] for r in undecided] == [r["label"] for r in plain]
    assert [r["decided"] for r in undecided] == [False, False]
    assert all(r["decided"] for r in clf(["good", "bad"], min_score=0.0))
    loaded = clearpipe.load(tiny_bert, min_score=1.0)
    assert loaded("good")["decided"] is False and loaded("good", min_score=0.1)["decided"] is True
    assert all("decided" in r for r in loaded("good", top_k=None))
    with pytest.raises(InputError, match="min_score must be a number from 0 to 1"):
        clf("good", min_score=2)
    with pytest.raises(InputError, match="softmax"):
        clf("good", min_score=0.5, function_to_apply="sigmoid")


def test_saved_thresholds_decide_which_labels_apply(tiny_multi):
    clf = clearpipe.load(tiny_multi)
    thresholds = {"sports": 0.3, "tech": 0.5, "world": 0.7}
    for ranked in clf(["the film was good", "sports team win", ""], top_k=None):
        assert {r["label"] for r in ranked} == set(thresholds)
        assert all(r["applies"] == (r["score"] >= thresholds[r["label"]]) for r in ranked)
    best = clf("sports team win")
    assert set(best) == {"label", "score", "applies"}
    with pytest.raises(InputError, match="threshold"):
        clearpipe.load(tiny_multi, min_score=0.5)
