"""A real uvicorn server on a free loopback port, in a thread, for each configuration a test needs."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn

import clearpipe
from clearpipe.server import ServerConfig, create_app


@contextlib.contextmanager
def live_server(clf: clearpipe.Classifier, config: ServerConfig) -> Iterator[str]:
    """Serve `clf` with `config` on 127.0.0.1 and yield the base URL once /ready answers."""
    with live_server_unready(clf, config) as url:
        wait_ready(url)
        yield url


@contextlib.contextmanager
def live_server_unready(clf: clearpipe.Classifier, config: ServerConfig | None = None) -> Iterator[str]:
    """Serve `clf` on 127.0.0.1 and yield the base URL as soon as /health answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(clf, config or ServerConfig()), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait_health(url)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()


def _wait_health(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"{url}/health", timeout=2)
            return
        time.sleep(0.02)
    raise TimeoutError(f"server at {url} not up after {timeout} s")


def wait_ready(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"server at {url} not ready after {timeout} s")


@pytest.fixture(scope="session")
def clf(tiny_bert) -> clearpipe.Classifier:
    return clearpipe.load(tiny_bert, device="cpu")


@pytest.fixture(scope="session")
def clf3(tiny) -> clearpipe.Classifier:
    return clearpipe.load(tiny("bert", 3, id2label={0: "neg", 1: "neu", 2: "pos"}), device="cpu")


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
