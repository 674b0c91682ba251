"""The service around /classify: probes, info, metrics, docs, /explain, the key, overload and timeouts."""

from __future__ import annotations

import gc
import json
import re
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


def test_full_queue_answers_429_and_the_queued_are_still_served(clf, serve):
    # Batches wait a long time to fill, so the first requests sit in the queue.
    url = serve(clf, max_queue=3, max_wait_ms=1500)
    results: list[httpx.Response] = []
    waiting = [
        threading.Thread(target=lambda b=b: results.append(httpx.post(f"{url}/classify", json=b, timeout=30)))
        for b in ({"inputs": "a good film"}, {"inputs": ["bad", "awful"]})
    ]
    for thread in waiting:
        thread.start()
    _wait_for_depth(url, 3)
    response = httpx.post(f"{url}/classify", json={"inputs": "one too many"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    assert "busy" in response.json()["error"]
    for thread in waiting:
        thread.join()
    assert [r.status_code for r in results] == [200, 200]


def test_waiting_past_the_timeout_answers_504(clf, serve):
    url = serve(clf, timeout_s=0.2, max_wait_ms=2000)
    response = httpx.post(f"{url}/classify", json={"inputs": "slow"}, timeout=30)
    assert response.status_code == 504
    assert "timeout" in response.json()["error"]
    _wait_for_depth(url, 0)  # it left the queue


def test_a_client_that_leaves_is_dropped_without_harming_others(clf, serve):
    url = serve(clf, max_wait_ms=800)
    stayed: list[httpx.Response] = []
    stayer = threading.Thread(
        target=lambda: stayed.append(httpx.post(f"{url}/classify", json={"inputs": "patient"}, timeout=30))
    )
    stayer.start()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{url}/classify", json={"inputs": ["impatient"] * 3}, timeout=0.2)
    _wait_for_depth(url, 1)  # the impatient client's three inputs are gone, the patient one waits
    stayer.join()
    assert stayed[0].status_code == 200
    assert stayed[0].json() == clf("patient")
    assert re.search(r'clearpipe_dropped_total\{reason="client_gone"\} 1.0', httpx.get(f"{url}/metrics").text)


def test_ready_only_after_warm_up(tiny_bert):

    slow = clearpipe.load(tiny_bert, device="cpu")
    # The first forward pass (the warm-up) takes a while; /health answers meanwhile, /ready does not.
    calls = []

    runner = slow.runner

    class SlowRunner:  # what the engine reads of a runner: its forward and whether it packs
        pack_offset = runner.pack_offset

        def forward(self, batch):
            if not calls:
                time.sleep(1.5)
            calls.append(1)
            return runner.forward(batch)

    slow.runner = SlowRunner()
    with live_server_unready(slow) as url:
        assert httpx.get(f"{url}/health").status_code == 200
        response = httpx.get(f"{url}/ready")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert httpx.post(f"{url}/classify", json={"inputs": "early"}).status_code == 503
        wait_ready(url)
        assert httpx.post(f"{url}/classify", json={"inputs": "on time"}).status_code == 200
