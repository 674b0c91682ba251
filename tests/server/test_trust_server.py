"""POST /classify with a saved temperature, multi-label thresholds and `min_score`: the Python
API's answers, over real HTTP."""

from __future__ import annotations

import json

import httpx
import pytest

import clearpipe

TEXTS = ["a good film", "the worst movie ever", "sports team win", ""]


def post(url: str, body: object) -> httpx.Response:
    return httpx.post(f"{url}/classify", json=body, timeout=30)


def python_api(clf: clearpipe.Classifier, body: dict) -> object:
    top_k = body.get("top_k", clearpipe.BEST)
    return json.loads(json.dumps(clf(body["inputs"], top_k=top_k, min_score=body.get("min_score"))))


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": TEXTS, "min_score": 0.5},
        {"inputs": TEXTS, "min_score": 1},
        {"inputs": "a good film", "top_k": None, "min_score": 0.5},
        {"inputs": TEXTS},
    ],
)
def test_min_score_marks_undecided_results(clf, url, body):
    response = post(url, body)
    assert response.status_code == 200, response.text
    assert response.json() == python_api(clf, body)
    if "min_score" in body and body.get("top_k", 0) is not None:
        assert all(r["decided"] == (r["score"] >= body["min_score"]) for r in response.json())


def test_the_servers_min_score_is_the_default(tiny_bert, serve):
    url = serve(clearpipe.load(tiny_bert, device="cpu", min_score=1.0))
    assert [r["decided"] for r in post(url, {"inputs": TEXTS}).json()] == [False] * len(TEXTS)
    assert all(r["decided"] for r in post(url, {"inputs": TEXTS, "min_score": 0.0}).json())
    assert httpx.get(f"{url}/info").json()["min_score"] == 1.0


@pytest.mark.parametrize("min_score", [1.5, -0.1, "0.5", True])
def test_a_bad_min_score_is_refused(url, min_score):
    response = post(url, {"inputs": "good", "min_score": min_score})
    assert response.status_code == 422 and "min_score" in response.text


def test_calibrated_scores_and_their_raw_softmax(tiny_calibrated, serve):
    calibrated = clearpipe.load(tiny_calibrated, device="cpu")
    url = serve(calibrated)
    body = {"inputs": TEXTS, "top_k": None}
    assert post(url, body).json() == python_api(calibrated, body)
    raw = clearpipe.load(tiny_calibrated, device="cpu", calibrated=False)
    raw_answer = post(serve(raw), body).json()
    assert raw_answer == python_api(raw, body) and raw_answer != post(url, body).json()
    assert [[r["label"] for r in row] for row in raw_answer] == [
        [r["label"] for r in row] for row in post(url, body).json()
    ]
    info = httpx.get(f"{url}/info").json()
    assert info["calibration"] == {"method": "temperature", "temperature": 2.5} and info["min_score"] is None


def test_thresholds_decide_which_labels_apply(tiny_multi, serve):
    clf = clearpipe.load(tiny_multi, device="cpu")
    url = serve(clf)
    thresholds = {"sports": 0.3, "tech": 0.5, "world": 0.7}
    answer = post(url, {"inputs": TEXTS, "top_k": None}).json()
    assert answer == python_api(clf, {"inputs": TEXTS, "top_k": None})
    assert all(r["applies"] == (r["score"] >= thresholds[r["label"]]) for row in answer for r in row)
    assert httpx.get(f"{url}/info").json()["thresholds"] == thresholds
    refused = post(url, {"inputs": "good", "min_score": 0.5})
    assert refused.status_code == 422 and "threshold" in refused.json()["error"]
