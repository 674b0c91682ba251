"""POST /classify over real HTTP: the Python API's answers, batched, each to its own client."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx
import numpy as np
import pytest

import clearpipe
from clearpipe import BEST
from clearpipe.inputs import normalize_inputs

TEXTS = ["a good film", "the worst movie ever", "not very funny", "I loved the actors", "boring plot"]


def post(url: str, body: object, **kw) -> httpx.Response:
    return httpx.post(f"{url}/classify", json=body, timeout=30, **kw)


def python_api(clf: clearpipe.Classifier, body: dict) -> object:
    """What the Python API returns for the same request, round-tripped through JSON."""
    top_k = body.get("top_k", BEST)
    return json.loads(
        json.dumps(clf(body["inputs"], top_k=top_k, function_to_apply=body.get("function_to_apply")))
    )


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": "a good film"},
        {"inputs": TEXTS},
        {"inputs": TEXTS, "top_k": 1},
        {"inputs": TEXTS, "top_k": None},
        {"inputs": TEXTS, "top_k": 7},
        {"inputs": "a good film", "top_k": None, "function_to_apply": "none"},
        {"inputs": TEXTS, "function_to_apply": "sigmoid"},
        {"inputs": [["a premise", "a hypothesis"], ["the film", "the plot"]]},
        {"inputs": [{"text": "a premise", "text_pair": "a hypothesis"}, {"text": "plain"}]},
        {"inputs": {"text": "one", "text_pair": "pair"}},
        {"inputs": []},
    ],
)
def test_answers_equal_the_python_api(clf, url, body):
    response = post(url, body)
    assert response.status_code == 200, response.text
    assert response.json() == python_api(clf, body)


def test_three_labels_and_top_k(clf3, serve):
    url = serve(clf3)
    for body in ({"inputs": TEXTS, "top_k": 2}, {"inputs": "great", "top_k": None}, {"inputs": TEXTS}):
        assert post(url, body).json() == python_api(clf3, body)


def test_headers_carry_stage_times(url):
    response = post(url, {"inputs": TEXTS})
    for header in ("x-tokenization-time", "x-queue-time", "x-inference-time", "x-total-time"):
        assert float(response.headers[header]) >= 0
    assert int(response.headers["x-batch-size"]) >= len(TEXTS)


def test_concurrent_requests_each_get_their_own_answer(clf, serve):
    # A long deadline makes the requests share batches; options differ per request.
    url = serve(clf, max_wait_ms=100)
    words = [
        "good",
        "bad",
        "awful",
        "fun",
        "boring",
        "great",
        "best",
        "worst",
        "funny",
        "love",
        "hate",
        "film",
        "movie",
        "story",
        "plot",
    ]
    bodies = []
    for i in range(48):
        text = " ".join(words[(i * k) % len(words)] for k in range(1, 2 + i % 9))
        body: dict = {"inputs": text if i % 3 else [text, words[i % len(words)]]}
        if i % 4 == 1:
            body["top_k"] = None
        if i % 5 == 2:
            body["function_to_apply"] = "none"
        bodies.append(body)

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            return await asyncio.gather(*(client.post("/classify", json=b) for b in bodies))

    responses = asyncio.run(send_all())
    assert max(int(r.headers["x-batch-size"]) for r in responses) > 1, "no two requests shared a batch"
    for body, response in zip(bodies, responses, strict=True):
        assert response.status_code == 200
        # Batched with others, padding differs, so compare scores with a tolerance.
        assert _flatten(response.json()) == pytest.approx(_flatten(python_api(clf, body)), rel=1e-4, abs=1e-5)
        assert _labels(response.json()) == _labels(python_api(clf, body))


def _flatten(result: object) -> list[float]:
    if isinstance(result, dict):
        return [result["score"]]
    return [score for item in result for score in _flatten(item)]


def _labels(result: object) -> list[str]:
    if isinstance(result, dict):
        return [result["label"]]
    return [label for item in result for label in _labels(item)]


def test_long_text_chunk_matches_the_python_api(tiny_bert, clf, url):
    long = "a good film but the worst movie ever and a boring plot " * 12  # several 64-token windows
    chunked = clearpipe.load(tiny_bert, device="cpu", long_text="chunk")
    expected = chunked([long, "short"], top_k=None)
    got = post(url, {"inputs": [long, "short"], "top_k": None, "long_text": "chunk"}).json()
    assert [[d["label"] for d in row] for row in got] == [[d["label"] for d in row] for row in expected]
    assert got[0][0]["windows"] == expected[0][0]["windows"] > 1
    assert got[1][0]["windows"] == 1
    for g, e in zip(got, expected, strict=True):
        assert [d["score"] for d in g] == pytest.approx([d["score"] for d in e], abs=2e-3)
    # The server's default stays truncate: no "windows" key.
    assert set(post(url, {"inputs": long}).json()) == {"label", "score"}


def test_an_int8_server_answers_like_the_python_api_close_calls_included(tiny_bert, serve):
    int8 = clearpipe.load(tiny_bert, device="cpu", dtype="int8")
    referee, int8.referee = int8.referee, None
    assert referee is not None
    logits = int8.logits(int8.tokenize(normalize_inputs(TEXTS).items))
    # A margin at the median top-two gap sends some texts to the float referee, not all.
    int8.referee = dataclasses.replace(referee, margin=float(np.median(np.abs(logits[:, 0] - logits[:, 1]))))
    assert 0 < len(int8.close_calls(logits)) < len(TEXTS)
    url = serve(int8)
    for body in ({"inputs": TEXTS, "top_k": None}, {"inputs": "a good film"}):
        assert post(url, body).json() == python_api(int8, body)


def test_a_text_classifier_refuses_the_entity_options(url):
    body = {"inputs": ["a fine film"], "aggregation_strategy": "simple", "ignore_labels": []}
    response = post(url, body)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == (
        "aggregation_strategy, ignore_labels: only for a token-classification (NER) model"
    )
