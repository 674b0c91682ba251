"""The lean /classify route: it answers valid requests itself and passes everything else,
body intact, to FastAPI, which owns the error messages."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

from clearpipe.errors import InputError
from clearpipe.server.batcher import QueueFull
from clearpipe.server.config import ServerConfig
from clearpipe.server.fast_route import FastClassify
from clearpipe.server.service import Classified


class FakeService:
    def __init__(self, api_key: str | None = None, fails: Exception | None = None) -> None:
        self.config = ServerConfig(api_key=api_key)
        self.ready = True
        self.fails = fails
        self.bodies: list[object] = []

    async def classify(self, body, disconnected=None) -> Classified:
        self.bodies.append(body)
        if self.fails is not None:
            raise self.fails
        return Classified({"label": "positive", "score": 0.5}, {"X-Batch-Size": "1"})


def call(service: FakeService, body: bytes, headers: dict[bytes, bytes] | None = None,
         path: str = "/classify", method: str = "POST") -> SimpleNamespace:  # fmt: skip
    """Run one request through FastClassify; record what the inner app received and what was sent."""
    passed_on: list[bytes] = []
    sent: list[dict] = []

    async def inner(scope, receive, send) -> None:
        passed_on.append((await receive())["body"])

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    headers = {b"content-type": b"application/json"} if headers is None else headers
    scope = {"type": "http", "path": path, "method": method, "headers": list(headers.items())}
    asyncio.run(FastClassify(inner, service)(scope, receive, send))
    status = sent[0]["status"] if sent else None
    payload = json.loads(sent[1]["body"]) if len(sent) > 1 and sent[1]["body"] else None
    return SimpleNamespace(passed_on=passed_on, status=status, payload=payload)


def test_a_valid_request_is_answered_without_fastapi():
    service = FakeService()
    result = call(service, b'{"inputs": ["good", "bad"], "top_k": 2}')
    assert result.passed_on == [] and result.status == 200
    assert result.payload == {"label": "positive", "score": 0.5}
    assert service.bodies[0].inputs == ["good", "bad"] and service.bodies[0].top_k == 2


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"inputs": "x", "topk": 1}', None),  # unknown field
        (b'{"inputs": "x", "top_k": "2"}', None),  # wrong type
        (b'{"inputs": "x"', None),  # not JSON
        (b"[]", None),
        (b'{"inputs": "x"}', {b"content-type": b"text/plain"}),
        (b'{"inputs": "x"}', {}),  # no content type
    ],
)
def test_what_it_would_refuse_goes_to_fastapi_with_the_body_intact(body, headers):
    service = FakeService()
    result = call(service, body, headers)
    assert result.passed_on == [body] and result.status is None and service.bodies == []


def test_the_api_key_is_checked_before_any_work():
    service = FakeService(api_key="s3cret")
    body = b'{"inputs": "x"}'
    assert call(service, body).passed_on == [body]  # FastAPI answers 401
    wrong = {b"content-type": b"application/json", b"authorization": b"Bearer nope"}
    assert call(service, body, wrong).passed_on == [body]
    right = {b"content-type": b"application/json", b"authorization": b"Bearer s3cret"}
    assert call(service, body, right).status == 200 and len(service.bodies) == 1


def test_other_routes_and_an_unready_model_go_to_fastapi():
    service = FakeService()
    assert call(service, b"{}", path="/explain").passed_on == [b"{}"]
    assert call(service, b"", path="/classify", method="GET").passed_on == [b""]
    service.ready = False
    assert call(service, b'{"inputs": "x"}').passed_on == [b'{"inputs": "x"}']


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [(InputError("input 0 has 9 characters, the limit is 5"), 422, "invalid_request"),
     (QueueFull(10, 10), 429, "overloaded")],
)  # fmt: skip
def test_errors_while_classifying_get_the_documented_answers(error, status, kind):
    result = call(FakeService(fails=error), b'{"inputs": "x"}')
    assert result.status == status and result.payload == {"error": str(error), "type": kind}
