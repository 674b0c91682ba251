"""A real uvicorn server on a free loopback port, in a thread, for each configuration a test needs."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

import checkpoints
import clearpipe
from clearpipe.server import ServerConfig, create_app


@contextlib.contextmanager
def live_server(clf: clearpipe.Classifier, config: ServerConfig) -> Iterator[str]:
    """Serve `clf` with `config` on 127.0.0.1 and yield the base URL once /ready answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(clf, config), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_ready(url)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"server at {url} not ready after {timeout} s")


@pytest.fixture(scope="session")
def tiny_sentiment(tmp_path_factory) -> Path:
    # Built here rather than with the `tiny` fixture, whose cache key cannot hold an id2label dict.
    folder = tmp_path_factory.mktemp("server-bert-2")
    return checkpoints.build(folder, "bert", 2, None, id2label={0: "negative", 1: "positive"})


@pytest.fixture(scope="session")
def clf(tiny_sentiment) -> clearpipe.Classifier:
    return clearpipe.load(tiny_sentiment, device="cpu")


@pytest.fixture(scope="session")
def clf3(tmp_path_factory) -> clearpipe.Classifier:
    folder = tmp_path_factory.mktemp("server-bert-3")
    checkpoints.build(folder, "bert", 3, None, id2label={0: "neg", 1: "neu", 2: "pos"})
    return clearpipe.load(folder, device="cpu")


@pytest.fixture(scope="module")
def serve() -> Iterator[Callable[..., str]]:
    """Factory: serve(clf, **config) -> base URL; every server stops at the end of the module."""
    with contextlib.ExitStack() as stack:

        def start(classifier: clearpipe.Classifier, **config: object) -> str:
            return stack.enter_context(live_server(classifier, ServerConfig(**config)))

        yield start


@pytest.fixture(scope="module")
def url(clf, serve) -> str:
    return serve(clf)
