"""Plain ASGI middleware: a body-size limit, and request counting and timing for the metrics.

Written as ASGI callables rather than Starlette's `BaseHTTPMiddleware` so they add little per
request and keep `receive` intact, which the batcher needs to notice a client leaving.
"""

from __future__ import annotations

import time

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearpipe.server.metrics import Metrics

ROUTES = frozenset(
    {"/classify", "/embed", "/explain", "/health", "/ready", "/info", "/metrics", "/docs", "/openapi.json"}
)


class BodyLimit:
    """Answer 413 to request bodies over `max_bytes`, before any of it is parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        body = await read_body(receive, self.max_bytes)
        if body is None:  # the client left
            return
        if len(body) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        await self.app(scope, replay(body, receive), send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"error": f"the request body is over the limit of {self.max_bytes} bytes", "type": "too_large"},
            status_code=413,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


async def read_body(receive: Receive, max_bytes: int | None = None) -> bytes | None:
    """The request body, or None if the client disconnected first. With `max_bytes`, reading
    stops as soon as the body is longer than that, and what was read so far is returned."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False) or (max_bytes is not None and len(body) > max_bytes):
            return bytes(body)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the buffered body once, then listens to the client again."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


CLIENT_CLOSED = 499
"""nginx's "client closed request": the client left before the server could answer."""


class Observe:
    """Count requests by route and status, and time them, into the server's `Metrics`.

    A request that ends without an answer because its client disconnected (mid-body, say) is
    counted as 499; one that ends without an answer for any other reason, as 500.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in ROUTES else "other"
        started = time.monotonic()
        status: int | None = None
        client_left = False

        async def receive_and_note() -> Message:
            nonlocal client_left
            message = await receive()
            client_left = client_left or message["type"] == "http.disconnect"
            return message

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive_and_note, send_and_note)
        finally:
            if status is None:
                status = CLIENT_CLOSED if client_left else 500
            self.metrics.requests.labels(route=route, status=str(status)).inc()
            self.metrics.latency.labels(route=route).observe(time.monotonic() - started)
