"""`clearpipe serve` with a token-classification model: POST /classify answers each text's entities."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import httpx
import pytest
import uvicorn

import clearpipe
from clearpipe.server import ServerConfig, create_app

TEXTS = ["the film was great, cafe worldly market price!", "new company in the world market"]


@pytest.fixture(scope="module")
def ner_url(ner_bert):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_app(clearpipe.load(ner_bert, dtype="float32"), ServerConfig())
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                break
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=15)
    sock.close()


def test_classify_answers_the_python_apis_entities(ner_bert, ner_url):
    expected = clearpipe.load(ner_bert, dtype="float32")(TEXTS)
    many = httpx.post(f"{ner_url}/classify", json={"inputs": TEXTS}, timeout=30)
    assert many.status_code == 200, many.text
    assert [[(e["entity_group"], e["start"], e["end"]) for e in x] for x in many.json()] == [
        [(e["entity_group"], e["start"], e["end"]) for e in x] for x in expected
    ]
    one = httpx.post(f"{ner_url}/classify", json={"inputs": TEXTS[0]}, timeout=30)
    assert one.json() == many.json()[0]
    info = httpx.get(f"{ner_url}/info", timeout=30).json()
    assert info["labels"][:2] == ["O", "B-PER"]
    assert info["task"] == "token-classification"


def test_a_request_over_max_request_tokens_gets_413(ner_url):
    # Twelve texts of 19,950 characters (under --max-chars) are over 40,000 tokens in windows,
    # over the default --max-request-tokens of 32,768: refused before the engine runs them.
    texts = ["Peter lives in Tokyo " * 950] * 12
    response = httpx.post(f"{ner_url}/classify", json={"inputs": texts}, timeout=60)
    assert response.status_code == 413, response.text
    assert "32768 tokens per request (max_request_tokens)" in response.json()["error"]
    small = httpx.post(f"{ner_url}/classify", json={"inputs": texts[0][:200]}, timeout=30)
    assert small.status_code == 200, small.text


@pytest.mark.parametrize(
    ("body", "message"),
    [({"inputs": ["a", "b"], "top_k": 2}, "top_k"), ({"inputs": [["a", "b"]]}, "not pairs")],
)
def test_sequence_options_and_pairs_are_refused(ner_url, body, message):
    response = httpx.post(f"{ner_url}/classify", json=body, timeout=30)
    assert response.status_code == 422
    assert message in response.json()["error"]


def test_explain_answers_the_token_trace(ner_bert, ner_url):
    import jsonschema

    from clearpipe.trace.record import json_schema

    answer = httpx.post(f"{ner_url}/explain", json={"text": TEXTS[0]}, timeout=60)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    jsonschema.Draft202012Validator(json_schema()).validate(data)
    assert data["task"] == "token-classification"
    assert data["entities"] == clearpipe.load(ner_bert, dtype="float32")(TEXTS[0])


@pytest.mark.parametrize(
    "options",
    [
        {"aggregation_strategy": "none"},
        {"aggregation_strategy": "simple", "ignore_labels": []},
        {"aggregation_strategy": "max", "ignore_labels": ["O", "PER"]},
        {"ignore_labels": []},
    ],
)
def test_aggregation_strategy_and_ignore_labels_answer_as_the_python_api(ner_bert, ner_url, options):
    expected = clearpipe.load(ner_bert, dtype="float32")(TEXTS, **options)
    response = httpx.post(f"{ner_url}/classify", json={"inputs": TEXTS, **options}, timeout=30)
    assert response.status_code == 200, response.text
    got = response.json()
    assert [[{k: v for k, v in e.items() if k != "score"} for e in x] for x in got] == [
        [{k: v for k, v in e.items() if k != "score"} for e in x] for x in expected
    ]
    scores = [e["score"] for x in got for e in x]
    assert scores == pytest.approx([e["score"] for x in expected for e in x], abs=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"aggregation_strategy": "longest"},
            "unknown aggregation_strategy 'longest': use one of none, simple",
        ),
        ({"ignore_labels": "O"}, "ignore_labels"),
    ],
)
def test_a_bad_strategy_or_ignore_list_gets_422_naming_it(ner_url, options, message):
    response = httpx.post(f"{ner_url}/classify", json={"inputs": TEXTS, **options}, timeout=30)
    assert response.status_code == 422, response.text
    assert message in response.json()["error"]
