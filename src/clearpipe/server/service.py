"""What a server does for a request, independent of the web framework in front of it.

`Service` holds the classifier, the settings, the batcher and the metrics. `Service.classify`
is the whole of `POST /classify` after the body is parsed: check the limits, tokenize with the
classifier's own tokenizer, queue in the batcher, and post-process the request's share of the
batch's logits with its own activation, `top_k` and `min_score`, so that requests with different
options still share one forward pass. Its answer is exactly the Python API's output contract
(`Predictions.to_output`). Both doors to it, FastAPI's route and the lean ASGI one
(`clearpipe.server.fast_route`), call this one function.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from clearpipe.errors import InputError
from clearpipe.inputs import Batch, TextInput, normalize_inputs
from clearpipe.postprocess import BEST, Activation, TopK, check_top_k, parse_activation
from clearpipe.server import schemas
from clearpipe.server.batcher import Batcher
from clearpipe.server.config import ServerConfig
from clearpipe.server.entities import TOKEN_FIELDS, classify_entities, finds_entities
from clearpipe.server.metrics import Metrics

if TYPE_CHECKING:  # only named: `serve --lite` runs without torch
    from clearpipe.contract import TextClassifier

log = logging.getLogger("clearpipe.server")

# Below this many characters a request is tokenized on the event loop: the hop to a thread
# would cost more than the tokenizer does.
_INLINE_TOKENIZE_CHARS = 4096

T = TypeVar("T")


@dataclass(frozen=True)
class Classified:
    """One answered `/classify` request: the JSON-ready output and the timing headers."""

    output: Any
    headers: dict[str, str]


@dataclass
class Service:
    """Everything the routes share: the classifier, the settings, the batcher and the metrics."""

    classifier: TextClassifier  # `clearpipe.Classifier` or `clearpipe.lite.LiteClassifier`
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

    async def classify(
        self, body: schemas.ClassifyRequest, disconnected: Callable[[], Awaitable[object]] | None = None
    ) -> Classified:
        """Answer one `/classify` body; raise `InputError`, or the batcher's `QueueFull`, `Timeout`
        or `ClientGone` (once `disconnected()` returns).

        >>> (await service.classify(ClassifyRequest(inputs="a fine film"))).output  # doctest: +SKIP
        {'label': 'positive', 'score': 0.98}
        """
        if finds_entities(self.classifier):  # a NER model: each text's entities
            output, headers = await classify_entities(self.classifier, self.batcher, self.config, body)
            return Classified(output, headers)
        started = time.monotonic()
        clf = self.classifier
        batch, top_k, activation, min_score = self._parse(body)
        # Chunked inputs travel as their windows (one row each) and are aggregated afterwards.
        chunk = (body.long_text or clf.settings.long_text) == "chunk"
        windows = await _tokenize(clf.tokenize_windows, batch) if chunk else None
        tokenized = windows.tokenized if windows else await _tokenize(clf.tokenize, batch)
        tokenized_at = time.monotonic()
        job = self.batcher.submit(tokenized)
        answer = await self.batcher.result(job, disconnected=disconnected)
        predictions = clf.postprocess(answer.logits, activation)
        if windows:
            predictions = clf.combine_windows(predictions, windows)
        outputs = predictions.to_output(top_k, min_score)
        headers = {
            "X-Tokenization-Time": _ms(tokenized_at - started),
            "X-Queue-Time": _ms(answer.queue_s),
            "X-Inference-Time": _ms(answer.inference_s),
            "X-Total-Time": _ms(time.monotonic() - started),
            "X-Batch-Size": str(answer.batch_inputs),
        }
        return Classified(outputs[0] if batch.single else outputs, headers)

    def _parse(self, body: schemas.ClassifyRequest) -> tuple[Batch, TopK, Activation, float | None]:
        """Check a request against the limits and turn it into normalized inputs and options."""
        batch = normalize_inputs(body.inputs)
        limit = self.config.max_inputs
        if len(batch.items) > limit:
            raise InputError(f"too many inputs: {len(batch.items)} in one request, the limit is {limit}")
        for i, item in enumerate(batch.items):
            for text in (item,) if isinstance(item, str) else item:
                check_text(text, self.config.max_chars, where=f"input {i}")
        given = sorted(name for name in TOKEN_FIELDS if name in body.model_fields_set)
        if given:
            raise InputError(f"{', '.join(given)}: only for a token-classification (NER) model")
        labels = len(self.classifier.labels)
        top_k = check_top_k(body.top_k, labels) if "top_k" in body.model_fields_set else BEST
        activation = self.classifier.settings.activation
        if body.function_to_apply is not None:
            activation = parse_activation(body.function_to_apply)
        min_score = self.classifier.check_min_score(body.min_score, activation)
        return batch, top_k, activation, min_score


def check_text(text: str, limit: int, where: str) -> None:
    """Raise `InputError` for a text over the server's character limit."""
    if len(text) > limit:
        raise InputError(f"{where} has {len(text)} characters, the limit is {limit}")


async def _tokenize(tokenize: Callable[[list[TextInput]], T], batch: Batch) -> T:
    chars = sum(len(item) if isinstance(item, str) else len(item[0]) + len(item[1]) for item in batch.items)
    if chars <= _INLINE_TOKENIZE_CHARS:
        return tokenize(batch.items)
    return await anyio.to_thread.run_sync(tokenize, batch.items)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"
