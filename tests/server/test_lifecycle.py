"""`clearpipe serve` as users run it: refusing unsafe binds, and draining on SIGTERM."""

from __future__ import annotations

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
    # A long batch deadline keeps the requests in flight when the signal arrives.
    proc = _cli(
        "--model", str(tiny_bert), "--port", str(port), "--max-wait-ms", "1500", "--log-level", "warning",
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
