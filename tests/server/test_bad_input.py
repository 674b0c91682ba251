"""A client's mistake gets a 4xx with a message, never a 500, and never stops the server."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
FIELDS = st.sampled_from(["inputs", "top_k", "function_to_apply", "long_text", "text", "extra"])
NEAR_VALID = st.dictionaries(
    FIELDS, JSON | st.sampled_from(["softmax", "none", "chunk", 0, -1, 2]), max_size=4
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def post_json(url: str, body: object) -> httpx.Response:
    # json.dumps, unlike httpx, also writes NaN and Infinity, which Python's parser accepts.
    content = json.dumps(body)
    return httpx.post(
        f"{url}/classify", content=content, headers={"content-type": "application/json"}, timeout=30
    )


def assert_client_error_or_ok(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert 400 <= response.status_code < 500
        body = response.json()
        assert isinstance(body["error"], str) and body["error"]


@FUZZ
@given(body=JSON)
def test_arbitrary_json_bodies(url, body):
    assert_client_error_or_ok(post_json(url, body))


@FUZZ
@given(body=NEAR_VALID)
def test_request_shaped_bodies(url, body):
    assert_client_error_or_ok(post_json(url, body))


@FUZZ
@given(text=st.text(st.characters(exclude_categories=()), max_size=20))
def test_any_unicode_even_lone_surrogates(url, text):
    assert_client_error_or_ok(post_json(url, {"inputs": [text, {"text": "ok", "text_pair": text}]}))


@FUZZ
@given(raw=st.binary(max_size=200))
def test_arbitrary_bytes(url, raw):
    response = httpx.post(
        f"{url}/classify", content=raw, headers={"content-type": "application/json"}, timeout=30
    )
    assert_client_error_or_ok(response)


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, 400, "parsing"),
        (json.dumps({"inputs": [[[[[[["deep"]]]]]]]}), 422, "input 0"),
        ('{"inputs": ', 422, "not valid JSON"),
        (json.dumps({"inputs": "x" * 20_001}), 422, "characters"),
        (json.dumps({"inputs": ["ok"] * 257}), 422, "too many inputs"),
        (json.dumps({"inputs": "ok", "long_text": "split"}), 422, "long_text"),
        (json.dumps({"inputs": "ok", "top_k": 0}), 422, "top_k"),
        (json.dumps({"inputs": "ok", "top_k": True}), 422, "top_k"),
        (json.dumps({"inputs": "ok", "function_to_apply": "relu"}), 422, "function_to_apply"),
        (json.dumps({"inputs": 3}), 422, "expected a string"),
        ('{"inputs": ["ok", "bad \\ud800"]}', 422, "input 1 is not valid Unicode"),
        (json.dumps({"inputs": ["ok", ["a", "b", "c"]]}), 422, "input 1"),
        (json.dumps({"top_k": 1}), 422, "inputs"),
        (json.dumps({"inputs": "ok", "unknown": 1}), 422, "unknown"),
    ],
)
def test_named_mistakes(url, content, status, message):
    response = httpx.post(
        f"{url}/classify", content=content, headers={"content-type": "application/json"}, timeout=30
    )
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_form_body_is_told_to_send_json(url):
    response = httpx.post(f"{url}/classify", data={"inputs": "ok"}, timeout=30)
    assert response.status_code == 422
    assert "application/json" in response.json()["error"]


def test_body_over_the_limit_is_413(clf, serve):
    small = serve(clf, max_body_bytes=1000)
    response = httpx.post(f"{small}/classify", json={"inputs": "x" * 2000}, timeout=30)
    assert response.status_code == 413
    assert "limit of 1000 bytes" in response.json()["error"]
    # Chunked, with no Content-Length to check up front.
    chunks = iter([b'{"inputs": "', b"x" * 800, b"x" * 800, b'"}'])
    response = httpx.post(f"{small}/classify", content=chunks, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert httpx.post(f"{small}/classify", json={"inputs": "fine"}).status_code == 200


def test_unknown_route_and_method_are_json_4xx(url):
    assert httpx.get(f"{url}/nowhere").json()["type"] == "not_found"
    response = httpx.get(f"{url}/classify")
    assert response.status_code == 405
    assert response.json()["error"]


def test_server_still_answers_after_all_that(clf, url):
    response = httpx.post(f"{url}/classify", json={"inputs": "a good film"}, timeout=30)
    assert response.status_code == 200
    assert response.json()["label"] in clf.labels
