"""`POST /classify` for well-formed requests, as a plain ASGI route in front of FastAPI.

Under load the event loop is the server's second bottleneck after the engine: every request
is parsed, validated, tokenized, queued and answered there, one at a time. FastAPI's request
machinery (routing, the `Request` object, dependency solving, reading and validating the body
in separate steps) was about a sixth of the loop's time per request. This route does only what
a valid request needs: one `model_validate_json` of the body against the same pydantic model,
the same API-key check, then `Service.classify`, the function FastAPI's route calls too.

Anything it would have to refuse (no or wrong key, a body that does not validate, a model not
ready yet) it passes on untouched to FastAPI, whose route and handlers give the documented
errors. Errors raised while classifying (limits, a full queue, a timeout, a client that left)
get the same answers as there (`clearpipe.server.error_responses`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clearpipe.server import error_responses, schemas
from clearpipe.server.middleware import read_body, replay
from clearpipe.server.security import key_matches
from clearpipe.server.service import Service


class FastClassify:
    """ASGI middleware answering valid `POST /classify` requests through `Service.classify`.

    >>> app.add_middleware(FastClassify, service=service)  # doctest: +SKIP
    """

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._handles(scope):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive)
        if body is None:  # the client left before sending its body
            return
        request = self._parse(scope, body)
        if request is None:
            await self.app(scope, replay(body, receive), send)
            return
        try:
            answer = await self.service.classify(request, disconnect_waiter(receive))
        except error_responses.HANDLED as exc:
            response = error_responses.for_exception(exc)
        except asyncio.CancelledError:
            # uvicorn cancels the requests still running when a shutdown's drain time is up.
            # The batcher has dropped this one's rows; answer 503 so the client retries
            # elsewhere, instead of a dropped connection and a traceback in the log.
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            response = error_responses.shutting_down()
        else:
            response = JSONResponse(answer.output, headers=answer.headers)
        assert response is not None
        await response(scope, receive, send)

    def _handles(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http"
            and scope["path"] == "/classify"
            and scope["method"] == "POST"
            and self.service.ready
        )

    def _parse(self, scope: Scope, body: bytes) -> schemas.ClassifyRequest | None:
        """The request's body, or None when FastAPI should answer it (with an error)."""
        headers = dict(scope["headers"])
        if b"json" not in headers.get(b"content-type", b""):
            return None
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if not key_matches(authorization, self.service.config.api_key):
            return None
        try:
            return schemas.ClassifyRequest.model_validate_json(body)
        except ValidationError:
            return None


def disconnect_waiter(receive: Receive) -> Callable[[], Awaitable[None]]:
    """An awaitable that returns once the client has closed its connection.

    Call it only after the body is read: the next message can then only be the client leaving.
    """

    async def wait() -> None:
        message: Message = await receive()
        while message["type"] != "http.disconnect":
            message = await receive()

    return wait
