"""The HTTP API: FastAPI routes over a loaded `Classifier`, its batcher and its metrics.

What `POST /classify` does is `Service.classify` (`clearpipe.server.service`). Well-formed
requests reach it through a lean ASGI route (`clearpipe.server.fast_route`) in front of
FastAPI; the rest come through FastAPI's own route, which answers their errors and describes
the API on `/docs`. `create_zero_shot_app` serves a zero-shot model instead (`serve --zero-shot`):
`/classify` takes candidate labels and `/embed` gives embeddings (`clearpipe.server.zero_shot`),
with the same middleware, errors, `/health`, `/ready` and `/metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

import clearpipe
from clearpipe.server import error_responses, schemas
from clearpipe.server.config import ServerConfig
from clearpipe.server.fast_route import FastClassify, disconnect_waiter
from clearpipe.server.middleware import BodyLimit, Observe
from clearpipe.server.security import require_key
from clearpipe.server.service import Service, check_text

if TYPE_CHECKING:  # only named: `serve --lite` runs without torch
    from clearpipe.contract import TextClassifier
    from clearpipe.server.zero_shot import ZeroShotService
    from clearpipe.zeroshot import ZeroShotModel

log = logging.getLogger("clearpipe.server")

Authorized = Annotated[None, Depends(require_key)]


def create_app(classifier: TextClassifier, config: ServerConfig | None = None) -> FastAPI:
    """Build the FastAPI app for a loaded classifier (`clearpipe.load`'s, or a
    `clearpipe.lite.LiteClassifier`); run it with uvicorn.

    >>> app = create_app(clearpipe.load("path/to/checkpoint"), ServerConfig(api_key="s3cret"))  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
    """
    service = Service(classifier, (config or ServerConfig()).check())
    app = _app(
        service,
        "Text classification with dynamic micro-batching. Output contract: see `POST /classify`.",
        fast_route=True,
    )
    _add_routes(app)
    return app


def create_zero_shot_app(classifier: ZeroShotModel, config: ServerConfig | None = None) -> FastAPI:
    """Build the FastAPI app of a zero-shot server (`clearpipe.load_zero_shot`'s model): `/classify`
    with `candidate_labels`, and for a sentence encoder `/embed`.

    >>> app = create_zero_shot_app(clearpipe.load_zero_shot(), ServerConfig())  # doctest: +SKIP
    """
    from clearpipe.server.zero_shot import ZeroShotService

    service = ZeroShotService(classifier, (config or ServerConfig()).check())
    app = _app(
        service,
        "Zero-shot classification (labels given per request) and sentence embeddings, with dynamic "
        "micro-batching. Answers: transformers' zero-shot contract, see `POST /classify`.",
        fast_route=False,
    )
    _add_zero_shot_routes(app)
    return app


def _app(service: Service | ZeroShotService, description: str, fast_route: bool) -> FastAPI:
    """The app both servers share: lifespan (batcher, warm-up), middleware, errors, /health,
    /ready and /metrics."""

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
        title="clearpipe", version=clearpipe.__version__, description=description, lifespan=lifespan
    )
    app.state.service = service
    # Starlette runs the last added middleware first: Observe, BodyLimit, then the lean route.
    if fast_route:
        app.add_middleware(FastClassify, service=service)
    app.add_middleware(BodyLimit, max_bytes=service.config.max_body_bytes)
    app.add_middleware(Observe, metrics=service.metrics)
    _add_error_handlers(app)
    _add_common_routes(app)
    return app


# Routes ------------------------------------------------------------------------------------
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.ErrorResponse} for code in (401, 413, 422, 429, 503, 504)
}


def _add_routes(app: FastAPI) -> None:
    @app.post("/classify", response_model=schemas.ClassifyResponse, responses=_ERRORS)
    async def classify(body: schemas.ClassifyRequest, request: Request, _: Authorized) -> Response:
        """Classify a text, a list of texts or a list of pairs; same output as the Python API."""
        # Well-formed requests are answered by `fast_route` before they get here; this route
        # answers the rest (with the errors below) and describes the API for /docs.
        answer = await _ready_service(request).classify(body, disconnect_waiter(request.receive))
        return JSONResponse(answer.output, headers=answer.headers)

    @app.post("/explain", responses=_ERRORS)
    async def explain(body: schemas.ExplainRequest, request: Request, _: Authorized) -> Response:
        """Trace one text (and optional pair) through the three stages, with token attributions."""
        service = _ready_service(request)
        for name, text in (("text", body.text), ("text_pair", body.text_pair or "")):
            check_text(text, service.config.max_chars, where=name)

        def run() -> dict:
            return service.classifier.trace(body.text, pair=body.text_pair, attributions=True).to_dict()

        return JSONResponse(await service.batcher.run_exclusive(run))

    @app.get("/info", response_model=schemas.Info)
    async def info(request: Request, _: Authorized) -> schemas.Info:
        """What this server runs: model, labels, limits and versions."""
        service: Service = request.app.state.service
        clf, config = service.classifier, service.config
        return schemas.Info(
            model=clf.source,
            # a token classifier says so (`Tagger.task`); the others classify whole texts
            task=getattr(clf, "task", "text-classification"),
            labels=clf.labels,
            max_length=clf.max_length,
            dtype=clf.settings.dtype,
            device=str(clf.device),
            version=clearpipe.__version__,
            function_to_apply=clf.settings.activation.value,
            # lite has no windows; the full classifier truncates or chunks per request
            long_text=list(clf.settings.long_text_modes),
            calibration=None if clf.settings.temperature is None else clf.settings.temperature.to_dict(),
            thresholds=None
            if clf.settings.thresholds is None
            else dict(zip(clf.labels, clf.settings.thresholds, strict=True)),
            min_score=clf.settings.min_score,
            limits={
                "max_inputs": config.max_inputs,
                "max_request_tokens": config.max_request_tokens,
                "max_chars": config.max_chars,
                "max_body_bytes": config.max_body_bytes,
                "max_queue": config.max_queue,
                "max_batch_tokens": config.max_batch_tokens,
                "max_wait_ms": config.max_wait_ms,
                "timeout_s": config.timeout_s,
            },
        )


def _add_common_routes(app: FastAPI) -> None:
    @app.get("/health")
    async def health() -> dict[str, str]:
        """The process is alive and answering."""
        return {"status": "ok"}

    @app.get("/ready", responses={503: {"model": schemas.ErrorResponse}})
    async def ready(request: Request) -> dict[str, str]:
        """The model is loaded and warmed up: send traffic."""
        _ready_service(request)
        return {"status": "ready"}

    @app.get("/metrics")
    async def metrics(request: Request, _: Authorized) -> Response:
        """Prometheus metrics."""
        body, content_type = request.app.state.service.metrics.render()
        return Response(body, media_type=content_type)


def _add_zero_shot_routes(app: FastAPI) -> None:
    @app.post("/classify", response_model=schemas.ZeroShotResponse, responses=_ERRORS)
    async def classify(body: schemas.ZeroShotRequest, request: Request, _: Authorized) -> Response:
        """Classify a text or a list of texts into the request's `candidate_labels`, as
        transformers' zero-shot pipeline answers."""
        answer = await _ready_service(request).classify(body, disconnect_waiter(request.receive))
        return JSONResponse(answer.output, headers=answer.headers)

    @app.post("/embed", response_model=schemas.EmbedResponse, responses=_ERRORS)
    async def embed(body: schemas.EmbedRequest, request: Request, _: Authorized) -> Response:
        """Unit-length sentence embeddings of `texts`, in order (a sentence encoder's server only)."""
        answer = await _ready_service(request).embed(body, disconnect_waiter(request.receive))
        return JSONResponse(answer.output, headers=answer.headers)

    @app.get("/info", response_model=schemas.ZeroShotInfo)
    async def info(request: Request, _: Authorized) -> schemas.ZeroShotInfo:
        """What this server runs: model, kind (similarity or NLI), default template, limits."""
        return request.app.state.service.info(clearpipe.__version__)


def _ready_service(request: Request) -> Any:
    service = request.app.state.service  # `Service`, or `ZeroShotService` on a zero-shot server
    if not service.ready:
        raise HTTPException(503, "the model is still loading or warming up", headers={"Retry-After": "1"})
    return service


# Errors ------------------------------------------------------------------------------------
def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        content_type = request.headers.get("content-type", "application/json")
        if "json" not in content_type:
            message = f"send the body as JSON with 'Content-Type: application/json' (got {content_type!r})"
            return error_responses.error(422, message, "invalid_request")
        return error_responses.error(422, _validation_message(exc.errors()), "invalid_request")

    async def known(request: Request, exc: Exception) -> Response:
        response = error_responses.for_exception(exc)
        assert response is not None, f"no answer for {type(exc).__name__}"
        return response

    for kind in error_responses.HANDLED:
        app.add_exception_handler(kind, known)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kinds = {
            400: "invalid_request",
            401: "unauthorized",
            404: "not_found",
            405: "method_not_allowed",
        }
        return error_responses.error(
            exc.status_code, str(exc.detail), kinds.get(exc.status_code, "error"), exc.headers
        )

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("clearpipe: internal error on %s", request.url.path)
        return error_responses.error(
            500, f"internal error ({type(exc).__name__}); see the server log", "internal"
        )


_ZERO_SHOT_FIELDS = frozenset({"candidate_labels", "hypothesis_template", "multi_label"})


def _validation_message(errors: Any) -> str:
    """One line from pydantic's errors: where each problem is and what was expected."""
    parts = []
    for error in list(errors)[:4]:
        if error.get("type") == "json_invalid":
            return f"the body is not valid JSON: {error.get('ctx', {}).get('error', 'cannot parse it')}"
        loc = ".".join(str(x) for x in error.get("loc", ()) if x != "body") or "body"
        if error.get("type") == "extra_forbidden" and loc in _ZERO_SHOT_FIELDS:
            return f"{loc}: this server runs a text classifier; candidate labels need `clearpipe serve --zero-shot`"
        parts.append(f"{loc}: {error.get('msg', 'invalid')}")
    more = len(errors) - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
