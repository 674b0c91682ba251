"""The HTTP API: FastAPI routes over a loaded `Classifier`, its batcher and its metrics.

`POST /classify` tokenizes a request with the classifier's own tokenizer, queues it in the
batcher, and post-processes its share of the batch's logits with the request's own activation
and `top_k`, so that requests with different options still share one forward pass. The answer
is exactly the Python API's output contract (`Predictions.to_output`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import clearpipe
from clearpipe import longtext
from clearpipe.classifier import Classifier, parse_activation
from clearpipe.errors import InputError
from clearpipe.inputs import Batch, TextInput, normalize_inputs
from clearpipe.postprocess import BEST, Activation, TopK, check_top_k
from clearpipe.server import schemas
from clearpipe.server.batcher import Batcher, ClientGone, QueueFull, Timeout
from clearpipe.server.config import ServerConfig
from clearpipe.server.metrics import Metrics
from clearpipe.server.middleware import BodyLimit, Observe
from clearpipe.server.security import require_key

log = logging.getLogger("clearpipe.server")

LONG_TEXT = longtext.LONG_TEXT_MODES

# Below this many characters a request is tokenized on the event loop: the hop to a thread
# would cost more than the tokenizer does.
_INLINE_TOKENIZE_CHARS = 4096

Authorized = Annotated[None, Depends(require_key)]
T = TypeVar("T")


@dataclass
class Service:
    """Everything the routes share: the classifier, the settings, the batcher and the metrics."""

    classifier: Classifier
    config: ServerConfig
    metrics: Metrics = field(default_factory=Metrics)
    ready: bool = False

    def __post_init__(self) -> None:
        self.batcher = Batcher(self.classifier.logits, self.config, self.metrics)

    async def warm_up(self) -> None:
        """Run `Classifier.warmup` on the engine thread, so the first client does not pay for setup."""
        await self.batcher.run_exclusive(self.classifier.warmup)
        # Everything loaded so far (torch, transformers, the model) lives as long as the process;
        # frozen, the collector stops walking it. Unfrozen, each full collection paused the event
        # loop for ~230 ms under load, which was the whole p99 of the load benchmark.
        gc.freeze()
        self.ready = True
        log.info("clearpipe: model %s ready", self.classifier.source)


def create_app(classifier: Classifier, config: ServerConfig | None = None) -> FastAPI:
    """Build the FastAPI app for a loaded classifier; run it with uvicorn.

    >>> app = create_app(clearpipe.load("path/to/checkpoint"), ServerConfig(api_key="s3cret"))  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
    """
    service = Service(classifier, (config or ServerConfig()).check())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.batcher.start()
        # Warm up in the background: /health answers at once, /ready once the model is warm.
        warming = asyncio.create_task(service.warm_up())
        yield
        service.ready = False
        warming.cancel()
        await service.batcher.stop()

    app = FastAPI(
        title="clearpipe",
        version=clearpipe.__version__,
        description="Text classification with dynamic micro-batching. Output contract: see `POST /classify`.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(BodyLimit, max_bytes=service.config.max_body_bytes)
    app.add_middleware(Observe, metrics=service.metrics)
    _add_error_handlers(app)
    _add_routes(app)
    return app


# Routes ------------------------------------------------------------------------------------
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.ErrorResponse} for code in (401, 413, 422, 429, 503, 504)
}


def _add_routes(app: FastAPI) -> None:
    @app.post("/classify", response_model=schemas.ClassifyResponse, responses=_ERRORS)
    async def classify(body: schemas.ClassifyRequest, request: Request, _: Authorized) -> Response:
        """Classify a text, a list of texts or a list of pairs; same output as the Python API."""
        service = _ready_service(request)
        started = time.monotonic()
        clf = service.classifier
        batch, top_k, activation = _parse(body, service)
        # Chunked inputs travel as their windows (one row each) and are aggregated afterwards.
        chunk = (body.long_text or clf.settings.long_text) == "chunk"
        windows = await _tokenize(clf.tokenize_windows, batch) if chunk else None
        tokenized = windows.tokenized if windows else await _tokenize(clf.tokenize, batch)
        tokenized_at = time.monotonic()
        job = service.batcher.submit(tokenized)
        answer = await service.batcher.result(job, disconnected=_disconnect_waiter(request))
        predictions = clf.postprocess(answer.logits, activation)
        if windows:
            predictions = clf.combine_windows(predictions, windows)
        outputs = predictions.to_output(top_k)
        headers = {
            "X-Tokenization-Time": _ms(tokenized_at - started),
            "X-Queue-Time": _ms(answer.queue_s),
            "X-Inference-Time": _ms(answer.inference_s),
            "X-Total-Time": _ms(time.monotonic() - started),
            "X-Batch-Size": str(answer.batch_inputs),
        }
        return JSONResponse(outputs[0] if batch.single else outputs, headers=headers)

    @app.post("/explain", responses={**_ERRORS, 501: {"model": schemas.ErrorResponse}})
    async def explain(body: schemas.ExplainRequest, request: Request, _: Authorized) -> Response:
        """Trace one text (and optional pair) through the three stages, with token attributions."""
        service = _ready_service(request)
        trace = getattr(service.classifier, "trace", None)
        if trace is None:
            raise HTTPException(
                501, "this build of clearpipe has no Classifier.trace yet, so /explain is not available"
            )
        for name, text in (("text", body.text), ("text_pair", body.text_pair or "")):
            _check_text(text, service.config.max_chars, where=name)

        def run() -> dict:
            return trace(body.text, pair=body.text_pair, attributions=True).to_dict()

        return JSONResponse(await service.batcher.run_exclusive(run))

    @app.get("/health")
    async def health() -> dict[str, str]:
        """The process is alive and answering."""
        return {"status": "ok"}

    @app.get("/ready", responses={503: {"model": schemas.ErrorResponse}})
    async def ready(request: Request) -> dict[str, str]:
        """The model is loaded and warmed up: send traffic."""
        _ready_service(request)
        return {"status": "ready"}

    @app.get("/info", response_model=schemas.Info)
    async def info(request: Request, _: Authorized) -> schemas.Info:
        """What this server runs: model, labels, limits and versions."""
        service: Service = request.app.state.service
        clf, config = service.classifier, service.config
        return schemas.Info(
            model=clf.source,
            labels=clf.labels,
            max_length=clf.max_length,
            dtype=clf.settings.dtype,
            device=str(clf.device),
            version=clearpipe.__version__,
            function_to_apply=clf.settings.activation.value,
            long_text=list(LONG_TEXT),
            limits={
                "max_inputs": config.max_inputs,
                "max_chars": config.max_chars,
                "max_body_bytes": config.max_body_bytes,
                "max_queue": config.max_queue,
                "max_batch_tokens": config.max_batch_tokens,
                "max_wait_ms": config.max_wait_ms,
                "timeout_s": config.timeout_s,
            },
        )

    @app.get("/metrics")
    async def metrics(request: Request, _: Authorized) -> Response:
        """Prometheus metrics."""
        body, content_type = request.app.state.service.metrics.render()
        return Response(body, media_type=content_type)


def _ready_service(request: Request) -> Service:
    service: Service = request.app.state.service
    if not service.ready:
        raise HTTPException(503, "the model is still loading or warming up", headers={"Retry-After": "1"})
    return service


def _parse(body: schemas.ClassifyRequest, service: Service) -> tuple[Batch, TopK, Activation]:
    """Check a request against the limits and turn it into normalized inputs and options."""
    batch = normalize_inputs(body.inputs)
    limit = service.config.max_inputs
    if len(batch.items) > limit:
        raise InputError(f"too many inputs: {len(batch.items)} in one request, the limit is {limit}")
    for i, item in enumerate(batch.items):
        for text in (item,) if isinstance(item, str) else item:
            _check_text(text, service.config.max_chars, where=f"input {i}")
    labels = len(service.classifier.labels)
    top_k = check_top_k(body.top_k, labels) if "top_k" in body.model_fields_set else BEST
    activation = service.classifier.settings.activation
    if body.function_to_apply is not None:
        activation = parse_activation(body.function_to_apply)
    return batch, top_k, activation


def _check_text(text: str, limit: int, where: str) -> None:
    if len(text) > limit:
        raise InputError(f"{where} has {len(text)} characters, the limit is {limit}")


async def _tokenize(tokenize: Callable[[list[TextInput]], T], batch: Batch) -> T:
    chars = sum(len(item) if isinstance(item, str) else len(item[0]) + len(item[1]) for item in batch.items)
    if chars <= _INLINE_TOKENIZE_CHARS:
        return tokenize(batch.items)
    return await anyio.to_thread.run_sync(tokenize, batch.items)


def _disconnect_waiter(request: Request) -> Callable[[], Awaitable[None]]:
    """An awaitable that returns once the client has closed its connection."""

    async def wait() -> None:
        # The body is already read, so the next message can only be the client leaving.
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return wait


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"


# Errors ------------------------------------------------------------------------------------
def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "type": kind}, status_code=status, headers=headers)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "application/json")
        if "json" not in content_type:
            message = f"send the body as JSON with 'Content-Type: application/json' (got {content_type!r})"
            return _error(422, message, "invalid_request")
        return _error(422, _validation_message(exc.errors()), "invalid_request")

    @app.exception_handler(InputError)
    async def bad_input(request: Request, exc: InputError) -> JSONResponse:
        return _error(422, str(exc), "invalid_request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {
            400: "invalid_request",
            401: "unauthorized",
            404: "not_found",
            405: "method_not_allowed",
            501: "not_implemented",
        }
        return _error(exc.status_code, str(exc.detail), kinds.get(exc.status_code, "error"), exc.headers)

    @app.exception_handler(QueueFull)
    async def busy(request: Request, exc: QueueFull) -> JSONResponse:
        return _error(429, str(exc), "overloaded", {"Retry-After": "1"})

    @app.exception_handler(Timeout)
    async def timeout(request: Request, exc: Timeout) -> JSONResponse:
        return _error(504, str(exc), "timeout")

    @app.exception_handler(ClientGone)
    async def gone(request: Request, exc: ClientGone) -> Response:
        # Nobody is listening; 499 (nginx's "client closed request") keeps the metrics honest.
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("clearpipe: internal error on %s", request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); see the server log", "internal")


def _validation_message(errors: Any) -> str:
    """One line from pydantic's errors: where each problem is and what was expected."""
    parts = []
    for error in list(errors)[:4]:
        if error.get("type") == "json_invalid":
            return f"the body is not valid JSON: {error.get('ctx', {}).get('error', 'cannot parse it')}"
        loc = ".".join(str(x) for x in error.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {error.get('msg', 'invalid')}")
    more = len(errors) - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
