"""The service around /classify: probes, info, metrics, docs, /explain, the key, overload and timeouts."""

from __future__ import annotations

import gc
import json
import re
import socket
import threading
import time

import httpx
import pytest

import clearpipe
from conftest import live_server_unready, wait_ready


def test_health_ready_info(clf, url):
    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{url}/ready").json() == {"status": "ready"}
    info = httpx.get(f"{url}/info").json()
    assert info["labels"] == clf.labels
    assert info["max_length"] == clf.max_length
    assert info["dtype"] == str(next(clf.model.parameters()).dtype).removeprefix("torch.")
    assert info["version"] == clearpipe.__version__
    assert info["model"] == clf.source
    assert info["task"] == "text-classification"


def test_ready_means_the_loaded_objects_are_frozen_out_of_garbage_collection(url):
    # A full collection walking torch's and transformers' objects paused the loop for ~230 ms.
    assert httpx.get(f"{url}/ready").status_code == 200
    assert gc.get_freeze_count() > 10_000


def test_docs_and_openapi(url):
    assert "swagger" in httpx.get(f"{url}/docs").text.lower()
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    assert {"/classify", "/explain", "/health", "/ready", "/info", "/metrics"} <= set(paths)


def test_metrics_count_requests_batches_and_tokens(url):
    httpx.post(f"{url}/classify", json={"inputs": ["a good film", "bad"]})
    httpx.post(f"{url}/classify", json={"inputs": 3})
    text = httpx.get(f"{url}/metrics").text
    assert re.search(r'clearpipe_requests_total\{route="/classify",status="200"\} [1-9]', text)
    assert re.search(r'clearpipe_requests_total\{route="/classify",status="422"\} [1-9]', text)
    assert re.search(r'clearpipe_request_latency_seconds_count\{route="/classify"\} [1-9]', text)
    assert re.search(r"clearpipe_batch_size_count [1-9]", text)
    assert re.search(r"clearpipe_tokens_total [1-9]", text)
    assert "clearpipe_queue_depth 0.0" in text


def test_explain(clf, url):
    response = httpx.post(f"{url}/explain", json={"text": "a good film"}, timeout=30)
    assert response.status_code == 200, response.text
    expected = clf.trace("a good film", pair=None, attributions=True).to_dict()
    assert _untimed(response.json()) == _untimed(json.loads(json.dumps(expected)))


def _untimed(value: object) -> object:
    """The trace without its stopwatch readings, which differ from run to run."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if k != "time_ms"}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def test_explain_rejects_bad_bodies(url):
    for body in ({}, {"text": 3}, {"text": "a", "extra": 1}):
        response = httpx.post(f"{url}/explain", json=body)
        assert response.status_code == 422
        assert response.json()["error"]


def test_api_key_is_enforced(clf, serve):
    url = serve(clf, api_key="s3cret")
    body = {"inputs": "a good film"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
        response = httpx.post(f"{url}/classify", json=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert "API key" in response.json()["error"]
    for route in ("/info", "/metrics"):
        assert httpx.get(f"{url}{route}").status_code == 401
    good = {"Authorization": "Bearer s3cret"}
    assert httpx.post(f"{url}/classify", json=body, headers=good).json() == clf("a good film")
    assert httpx.get(f"{url}/metrics", headers=good).status_code == 200
    # Probes stay open for load balancers.
    assert httpx.get(f"{url}/health").status_code == 200
    assert httpx.get(f"{url}/ready").status_code == 200


def _queue_depth(url: str) -> float:
    match = re.search(r"^clearpipe_queue_depth (\S+)$", httpx.get(f"{url}/metrics").text, re.M)
    assert match
    return float(match.group(1))


def _wait_for_depth(url: str, depth: float, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while _queue_depth(url) != depth:
        assert time.monotonic() < deadline, f"queue never reached depth {depth}"
        time.sleep(0.02)


class Held:
    """A classifier whose engine the test can hold: while held, the batch in the engine waits,
    and the requests behind it stay in the queue for as long as the test needs, on any machine.
    """

    def __init__(self, clf: clearpipe.Classifier) -> None:
        self._clf = clf
        self.entered = threading.Event()  # a batch is in the engine
        self.released = threading.Event()
        self.released.set()

    def __getattr__(self, name: str) -> object:
        return getattr(self._clf, name)

    def logits(self, tokenized):
        self.entered.set()
        self.released.wait(30)
        return self._clf.logits(tokenized)

    def hold(self) -> None:
        self.entered.clear()
        self.released.clear()


def _post_in_background(url: str, body: object, results: list[httpx.Response]) -> threading.Thread:
    thread = threading.Thread(
        target=lambda: results.append(httpx.post(f"{url}/classify", json=body, timeout=30))
    )
    thread.start()
    return thread


def test_full_queue_answers_429_and_the_queued_are_still_served(clf, serve):
    held = Held(clf)
    url = serve(held, max_queue=3)
    held.hold()
    results: list[httpx.Response] = []
    waiting = [_post_in_background(url, {"inputs": "the engine is busy with me"}, results)]
    assert held.entered.wait(30)
    waiting += [
        _post_in_background(url, b, results)
        for b in ({"inputs": "a good film"}, {"inputs": ["bad", "awful"]})
    ]
    _wait_for_depth(url, 3)
    response = httpx.post(f"{url}/classify", json={"inputs": "one too many"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert "busy" in response.json()["error"]
    held.released.set()
    for thread in waiting:
        thread.join()
    assert [r.status_code for r in results] == [200, 200, 200]


def test_waiting_past_the_timeout_answers_504(clf, serve):
    held = Held(clf)
    url = serve(held, timeout_s=0.2)
    held.hold()
    results: list[httpx.Response] = []
    blocker = _post_in_background(url, {"inputs": "the engine is busy with me"}, results)
    assert held.entered.wait(30)
    response = httpx.post(f"{url}/classify", json={"inputs": "slow"}, timeout=30)
    assert response.status_code == 504
    assert "timeout" in response.json()["error"]
    _wait_for_depth(url, 0)  # it left the queue
    held.released.set()
    blocker.join()


def test_a_client_that_leaves_is_dropped_without_harming_others(clf, serve):
    held = Held(clf)
    url = serve(held)
    held.hold()
    results: list[httpx.Response] = []
    blocker = _post_in_background(url, {"inputs": "the engine is busy with me"}, results)
    assert held.entered.wait(30)
    stayer = _post_in_background(url, {"inputs": "patient"}, results)
    _wait_for_depth(url, 1)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/classify", json={"inputs": ["impatient"] * 3}, timeout=0.5)
    _wait_for_depth(url, 1)  # the impatient client's three inputs are gone, the patient one waits
    held.released.set()
    for thread in (blocker, stayer):
        thread.join()
    assert [r.status_code for r in results] == [200, 200]
    assert clf("patient") in [r.json() for r in results]
    assert re.search(r'clearpipe_dropped_total\{reason="client_gone"\} 1.0', httpx.get(f"{url}/metrics").text)


ISSUE_BODY = {"inputs": ["great film. " * 1666] * 100, "long_text": "chunk"}
"""100 texts just under the character limit, each classified as its windows."""


def test_a_request_over_the_token_limit_answers_413_naming_the_limit(url):
    response = httpx.post(f"{url}/classify", json=ISSUE_BODY, timeout=120)
    assert response.status_code == 413, response.text
    assert response.json()["type"] == "too_large"
    assert "limit of 32768 tokens per request (max_request_tokens)" in response.json()["error"]
    assert httpx.get(f"{url}/info").json()["limits"]["max_request_tokens"] == 32768
    assert re.search(r'clearpipe_dropped_total\{reason="too_large"\} 1.0', httpx.get(f"{url}/metrics").text)


def test_a_request_over_a_lowered_limit_answers_413_without_chunking(clf, serve):
    url = serve(clf, max_request_tokens=100)
    assert httpx.post(f"{url}/classify", json={"inputs": ["a good film"] * 3}).status_code == 200
    response = httpx.post(f"{url}/classify", json={"inputs": ["a good film " * 20] * 2})
    assert response.status_code == 413
    assert "limit of 100 tokens per request" in response.json()["error"]


def test_a_client_that_disconnects_mid_body_is_counted_as_499(url):
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        head = f"POST /classify HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        sock.sendall(f"{head}Content-Length: 1000\r\n\r\n".encode() + b'{"inputs": "half a bo')
    deadline = time.monotonic() + 10
    pattern = r'clearpipe_requests_total\{route="/classify",status="(\d+)"\} (\S+)'
    while True:
        counted = dict(re.findall(pattern, httpx.get(f"{url}/metrics").text))
        if "499" in counted or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert float(counted.get("499", 0)) == 1.0, counted
    assert "500" not in counted


class HeldWarmUp(Held):
    """A classifier whose warm-up waits until the test releases it."""

    def warmup(self) -> None:
        self.released.wait(30)
        self._clf.warmup()


def test_ready_only_after_warm_up(clf):
    # /health answers while the model warms up, /ready and /classify do not.
    held = HeldWarmUp(clf)
    held.hold()
    with live_server_unready(held) as url:
        assert httpx.get(f"{url}/health").status_code == 200
        response = httpx.get(f"{url}/ready")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert httpx.post(f"{url}/classify", json={"inputs": "early"}).status_code == 503
        held.released.set()
        wait_ready(url)
        assert httpx.post(f"{url}/classify", json={"inputs": "on time"}).status_code == 200
