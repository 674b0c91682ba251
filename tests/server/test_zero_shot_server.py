"""`clearpipe serve --zero-shot`: `/classify` with candidate labels answers as the Python API's
zero-shot call, `/embed` as `ZeroShotClassifier.embed`, label prompts are embedded once per label
set, and bad labels or templates get a 422 naming the field."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import uvicorn

import checkpoints
from clearpipe.server import ServerConfig, create_zero_shot_app
from clearpipe.zeroshot import load_zero_shot
from cli.helpers import assert_user_error, popen, run
from server.conftest import wait_ready

TEXTS = ["The striker scored twice", "A faster chip for laptops", "Talks resume in Geneva"]
LABELS = ["World", "Sports", "Sci/Tech=science and technology news"]


@contextlib.contextmanager
def zero_shot_server(model, **config: object) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    app = create_zero_shot_app(model, ServerConfig(**config))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_ready(url)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


@pytest.fixture(scope="module")
def encoder_path(tiny, tmp_path_factory):
    return checkpoints.make_sensitive(tiny("bert", 2), tmp_path_factory.mktemp("encoder"), seed=5)


@pytest.fixture(scope="module")
def encoder(encoder_path):
    return load_zero_shot(encoder_path, device="cpu", dtype="float32")


@pytest.fixture(scope="module")
def zs_url(encoder) -> Iterator[str]:
    with zero_shot_server(encoder, max_inputs=8) as url:
        yield url


def classify(url: str, **body: object) -> httpx.Response:
    return httpx.post(f"{url}/classify", json=body, timeout=30)


def same(got: dict, expected: dict) -> bool:
    return (
        got["sequence"] == expected["sequence"]
        and got["labels"] == expected["labels"]
        and np.allclose(got["scores"], expected["scores"], atol=1e-5)
    )


def test_classify_answers_as_the_zero_shot_call(encoder, zs_url):
    one = classify(zs_url, inputs=TEXTS[0], candidate_labels=LABELS)
    assert one.status_code == 200 and same(one.json(), encoder(TEXTS[0], candidate_labels=LABELS))
    many = classify(zs_url, inputs=TEXTS, candidate_labels="World,Sports", hypothesis_template="About {}.")
    expected = encoder(TEXTS, candidate_labels="World,Sports", hypothesis_template="About {}.")
    assert all(same(g, e) for g, e in zip(many.json(), expected, strict=True))
    multi = classify(zs_url, inputs=TEXTS, candidate_labels=["sports"], multi_label=True).json()
    expected = encoder(TEXTS, candidate_labels=["sports"], multi_label=True)
    assert all(same(g, e) for g, e in zip(multi, expected, strict=True))
    assert classify(zs_url, inputs=[], candidate_labels=LABELS).json() == []


def test_label_prompts_are_embedded_once_per_label_set(encoder, zs_url):
    labels = ["cooking", "gardening", "chess"]
    before = len(encoder._prompts)
    for text in TEXTS:
        assert classify(zs_url, inputs=text, candidate_labels=labels).status_code == 200
    assert len(encoder._prompts) == before + 1
    kept = encoder.label_embeddings(encoder.labels(labels), compute=False)
    assert kept is not None and kept.shape[0] == 3


def test_concurrent_requests_with_different_labels_keep_their_own(encoder, zs_url):
    import concurrent.futures

    sets = [["World", "Sports"], ["a", "b", "c"], LABELS, ["x", "y"]] * 3

    def ask(labels):
        return classify(zs_url, inputs=TEXTS, candidate_labels=labels).json()

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(ask, sets))
    for labels, got in zip(sets, answers, strict=True):
        assert all(same(g, e) for g, e in zip(got, encoder(TEXTS, candidate_labels=labels), strict=True))


def test_embed_gives_the_encoders_unit_vectors(encoder, zs_url):
    answer = httpx.post(f"{zs_url}/embed", json={"texts": TEXTS}, timeout=30)
    assert answer.status_code == 200
    body = answer.json()
    assert body["dim"] == encoder.embedder.width and body["model"] == encoder.source
    np.testing.assert_allclose(np.array(body["embeddings"]), encoder.embed(TEXTS), atol=1e-5)
    assert httpx.post(f"{zs_url}/embed", json={"texts": []}).json()["embeddings"] == []
    info = httpx.get(f"{zs_url}/info").json()
    assert info["kind"] == "similarity" and info["embed"] and info["template"] == encoder.template


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"inputs": "x", "candidate_labels": ["only"]}, "candidate_labels"),
        ({"inputs": "x", "candidate_labels": "a,a"}, "candidate_labels"),
        ({"inputs": "x", "candidate_labels": ["a", ""]}, "candidate_labels"),
        ({"inputs": "x", "candidate_labels": []}, "candidate_labels"),
        ({"inputs": "x", "candidate_labels": [1, 2]}, "candidate_labels"),
        ({"inputs": "x"}, "candidate_labels"),
        (
            {"inputs": "x", "candidate_labels": "a,b", "hypothesis_template": "no braces"},
            "hypothesis_template",
        ),
        ({"inputs": ["x"] * 9, "candidate_labels": "a,b"}, "inputs"),
        ({"inputs": "x", "candidate_labels": "a,b", "top_k": 1}, "top_k"),
        ({"inputs": 3, "candidate_labels": "a,b"}, "inputs"),
    ],
)
def test_bad_requests_get_422_naming_the_field(zs_url, body, field):
    answer = httpx.post(f"{zs_url}/classify", json=body, timeout=30)
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["error"]


def test_embed_refuses_bad_bodies(zs_url):
    for body in ({"texts": "not a list"}, {"texts": [1]}, {}, {"texts": ["x"] * 9}):
        answer = httpx.post(f"{zs_url}/embed", json=body, timeout=30)
        assert answer.status_code == 422 and "texts" in answer.json()["error"], answer.text


def test_an_nli_server_classifies_and_has_no_embeddings(tiny):
    source = tiny("bert", 3, id2label={0: "contradiction", 1: "neutral", 2: "entailment"})
    nli = load_zero_shot(source, device="cpu", dtype="float32")
    with zero_shot_server(nli) as url:
        got = classify(url, inputs=TEXTS, candidate_labels=LABELS).json()
        assert all(same(g, e) for g, e in zip(got, nli(TEXTS, candidate_labels=LABELS), strict=True))
        refused = httpx.post(f"{url}/embed", json={"texts": TEXTS})
        assert refused.status_code == 422 and "sentence encoder" in refused.json()["error"]
        assert httpx.get(f"{url}/info").json()["kind"] == "nli"


def test_a_classification_server_points_candidate_labels_to_zero_shot(url):
    answer = httpx.post(f"{url}/classify", json={"inputs": "x", "candidate_labels": ["a", "b"]})
    assert answer.status_code == 422 and "--zero-shot" in answer.json()["error"]


def test_serve_zero_shot_refuses_what_does_not_apply():
    assert_user_error(run("serve", "--zero-shot", "--lite", "--model", "x"), "--lite", "--zero-shot")
    assert_user_error(run("serve", "--zero-shot", "--min-score", "0.5"), "--min-score")


@pytest.mark.slow
def test_serve_zero_shot_runs_as_a_process(encoder_path, encoder):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    server = popen("serve", "--zero-shot", "--model", encoder_path, "--dtype", "float32", "--port", str(port))
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, timeout=120)
        got = classify(url, inputs=TEXTS, candidate_labels=LABELS).json()
        assert all(same(g, e) for g, e in zip(got, encoder(TEXTS, candidate_labels=LABELS), strict=True))
        embedded = httpx.post(f"{url}/embed", json={"texts": TEXTS}).json()["embeddings"]
        np.testing.assert_allclose(np.array(embedded), encoder.embed(TEXTS), atol=1e-5)
    finally:
        server.terminate()
        server.wait(timeout=30)
