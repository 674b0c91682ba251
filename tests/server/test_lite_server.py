"""`clearpipe serve --lite`: the server over a `clearpipe.lite` classifier answers as lite does,
in the same micro-batches, and refuses what lite leaves out with a 422 naming it."""

from __future__ import annotations

import socket
import subprocess
import sys

import httpx
import numpy as np
import pytest

from checkpoints import MIXED_TEXTS as TEXTS
from clearpipe import lite
from cli.helpers import env, popen
from server.conftest import wait_ready


@pytest.fixture(scope="module")
def onnx_folder(onnx_export):
    return onnx_export  # tests/conftest.py: one export for every test that runs one


@pytest.fixture(scope="module")
def lite_url(onnx_folder, serve) -> str:
    return serve(lite.load(onnx_folder), max_wait_ms=20)


def close(got: list[dict], expected: list[dict]) -> bool:
    return len(got) == len(expected) and all(
        g["label"] == e["label"]
        and g.get("decided") == e.get("decided")
        and abs(g["score"] - e["score"]) < 1e-6
        for g, e in zip(got, expected, strict=True)
    )


def test_classify_answers_as_lite_does(onnx_folder, lite_url):
    small = lite.load(onnx_folder)
    got = httpx.post(f"{lite_url}/classify", json={"inputs": TEXTS[:20]}).json()
    assert close(got, small(TEXTS[:20]))
    ranked = httpx.post(f"{lite_url}/classify", json={"inputs": TEXTS[:3], "top_k": None, "min_score": 0.9})
    expected = small(TEXTS[:3], top_k=None, min_score=0.9)
    assert all(close(g, e) for g, e in zip(ranked.json(), expected, strict=True))
    raw = httpx.post(f"{lite_url}/classify", json={"inputs": TEXTS[:5], "function_to_apply": "none"}).json()
    logits = small.logits(TEXTS[:5])
    assert np.allclose([r["score"] for r in raw], logits.max(axis=1), atol=1e-5)


def test_concurrent_requests_share_micro_batches_and_keep_their_rows(onnx_folder, lite_url):
    import concurrent.futures

    expected = lite.load(onnx_folder)(TEXTS)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda i: httpx.post(f"{lite_url}/classify", json={"inputs": TEXTS[i : i + 5]}),
                range(0, 40, 5),
            )
        )
    got = [row for answer in answers for row in answer.json()]
    assert close(got, expected[:40])
    assert max(int(a.headers["X-Batch-Size"]) for a in answers) > 5  # some requests were merged


def test_what_lite_leaves_out_is_a_client_error(lite_url):
    explain = httpx.post(f"{lite_url}/explain", json={"text": "a fine film"})
    assert explain.status_code == 422 and "full classifier" in explain.json()["error"]
    chunk = httpx.post(f"{lite_url}/classify", json={"inputs": "a fine film", "long_text": "chunk"})
    assert chunk.status_code == 422 and "--lite" in chunk.json()["error"]


def test_a_servers_own_min_score_marks_every_answer(onnx_folder, serve):
    url = serve(lite.load(onnx_folder, min_score=0.6))
    got = httpx.post(f"{url}/classify", json={"inputs": TEXTS}).json()
    assert close(got, lite.load(onnx_folder)(TEXTS, min_score=0.6))
    assert {g["decided"] for g in got} == {True, False}
    assert httpx.get(f"{url}/info").json()["min_score"] == 0.6


def test_info_says_what_runs(lite_url, onnx_folder):
    info = httpx.get(f"{lite_url}/info").json()
    assert info["dtype"] == "lite onnx" and info["device"] == "cpu"
    assert info["long_text"] == ["truncate"] and info["min_score"] is None
    assert info["model"] == str(onnx_folder)


def test_the_lite_server_imports_neither_torch_nor_transformers(onnx_folder):
    script = (
        "import sys; from clearpipe import lite; "
        "from clearpipe.server import create_app; "
        f"create_app(lite.load({str(onnx_folder)!r})); "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def test_serve_lite_on_the_command_line(onnx_folder):
    with socket.socket() as probe:  # a free port, released for the server to take
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = popen("serve", "--lite", "--model", onnx_folder, "--port", str(port), "--log-level", "warning")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
        answer = httpx.post(f"{url}/classify", json={"inputs": TEXTS[:4]}).json()
        assert close(answer, lite.load(onnx_folder)(TEXTS[:4]))
        assert httpx.get(f"{url}/info").json()["dtype"] == "lite onnx"
    finally:
        server.terminate()
        server.wait(timeout=30)
