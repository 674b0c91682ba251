"""`clearpipe serve` as users run it: refusing unsafe binds, and draining on SIGTERM."""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from conftest import wait_ready


def _cli(*args: str, api_key: str | None = None, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("CLEARPIPE_API_KEY", None)
    if api_key is not None:
        env["CLEARPIPE_API_KEY"] = api_key
    return subprocess.Popen([sys.executable, "-m", "clearpipe", "serve", *args], env=env, text=True, **kw)


def test_refuses_a_public_bind_without_a_key(tiny_bert):
    proc = _cli("--model", str(tiny_bert), "--host", "0.0.0.0", stderr=subprocess.PIPE)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "refusing to listen on 0.0.0.0 without an API key" in err
    assert "Traceback" not in err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


KEY = {"Authorization": "Bearer from-the-env"}


def test_key_from_the_environment_and_sigterm_drains_requests_in_flight(clf, tiny_bert):
    port = _free_port()
    # A long batch deadline keeps the requests in flight when the signal arrives, however slowly
    # the six clients' threads start on a loaded machine.
    proc = _cli(
        "--model", str(tiny_bert), "--port", str(port), "--max-wait-ms", "4000", "--log-level", "warning",
        api_key="from-the-env", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
        assert httpx.post(f"{url}/classify", json={"inputs": "no key"}).status_code == 401
        texts = [f"request number {i} was a good film" for i in range(6)]
        answers: dict[str, httpx.Response] = {}

        def send(text: str) -> None:
            answers[text] = httpx.post(f"{url}/classify", json={"inputs": text}, headers=KEY, timeout=30)

        threads = [threading.Thread(target=send, args=(t,)) for t in texts]
        for thread in threads:
            thread.start()
        _wait_queued(url, len(texts))
        proc.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join()
        # uvicorn re-raises the signal once drained, so the exit status is "terminated by SIGTERM".
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
        err = proc.stderr.read()
        assert "Traceback" not in err
    finally:
        proc.kill()
    for text in texts:
        assert answers[text].status_code == 200
        expected = clf(text)  # batched with the others, so equal up to float rounding
        assert answers[text].json() == {"label": expected["label"], "score": pytest.approx(expected["score"])}


def _wait_queued(url: str, n: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = httpx.get(f"{url}/metrics", headers=KEY).text
        if float(re.search(r"^clearpipe_queue_depth (\S+)$", text, re.M).group(1)) >= n:
            return
        time.sleep(0.02)
    raise AssertionError("the requests never reached the queue")


# The oversized request: 256 texts just under the character limit, classified as their windows
# (about 24,000 windows of the tiny model's 64 tokens, 1.5 million tokens), so it is still
# running when the test ends on any machine. The server's limits (5 MB of body among them) are
# raised to let it in.
OVERSIZED = {"inputs": ["great film. " * 1666] * 256, "long_text": "chunk"}
CLIENTS = 16


def _latencies(url: str, clients: int = CLIENTS, each: int = 10) -> list[float]:
    """Seconds per request of `clients` keep-alive clients sending `each` one-sentence requests;
    a request that fails counts as infinitely slow."""
    seconds: list[float] = []

    def client(k: int) -> None:
        with httpx.Client(timeout=30) as http:
            for i in range(each):
                started = time.monotonic()
                try:
                    response = http.post(
                        f"{url}/classify", json={"inputs": f"client {k} says {i}: a good film"}
                    )
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                seconds.append(time.monotonic() - started if ok else math.inf)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return seconds


def _tokens(url: str) -> float:
    """Tokens the server's engine has been handed so far."""
    return float(
        re.search(r"^clearpipe_tokens_total (\S+)$", httpx.get(f"{url}/metrics").text, re.M).group(1)
    )


def _wait_tokens(url: str, n: float) -> None:
    deadline = time.monotonic() + 120
    while _tokens(url) < n:
        assert time.monotonic() < deadline, "the engine never started on the oversized request"
        time.sleep(0.05)


def _p99(seconds: list[float]) -> float:
    return sorted(seconds)[max(0, round(0.99 * len(seconds)) - 1)]


@pytest.mark.slow
def test_an_oversized_request_neither_stalls_other_clients_nor_outlasts_the_drain(tiny_bert):
    port, drain = _free_port(), 3.0
    proc = _cli(
        "--model", str(tiny_bert), "--port", str(port), "--drain", str(drain), "--log-level", "warning",
        "--max-request-tokens", "10000000", "--max-queue", "1000000", "--max-body-bytes", "10000000",
        "--timeout", "600",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
        _latencies(url, each=2)  # warm the connections and the engine's shapes
        alone = _p99(_latencies(url))
        answered: list[httpx.Response] = []
        oversized = threading.Thread(
            target=lambda: answered.append(httpx.post(f"{url}/classify", json=OVERSIZED, timeout=600)),
            daemon=True,
        )
        oversized.start()
        _wait_tokens(url, _tokens(url) + 1000)  # tokenized, and the engine has started on it
        assert not answered, answered[0].text
        with_oversized = _p99(_latencies(url))
        # Under 1 s; on a machine so busy that the clients' p99 alone is over a third of that,
        # under three times their p99 alone (before, they waited for the whole oversized request).
        assert with_oversized < max(1.0, 3 * alone), (
            f"p99 {with_oversized:.3f} s with the oversized request, {alone:.3f} s alone"
        )
        assert oversized.is_alive(), "the oversized request ended before the test measured anything"
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=drain + 120)
        took = time.monotonic() - signalled
    finally:
        proc.kill()
    # uvicorn waits `drain` for the oversized request, then cancels it; the batcher then waits
    # for the one micro-batch in the engine (about --target-batch-ms). Before, it waited for the
    # whole oversized request.
    assert took < drain + 3.0, f"exit took {took:.1f} s after SIGTERM with --drain {drain:g}"
