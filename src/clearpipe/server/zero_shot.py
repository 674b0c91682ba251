"""What a zero-shot server (`clearpipe serve --zero-shot`) does for `POST /classify` and `/embed`.

`ZeroShotService` holds a zero-shot model (`clearpipe.zeroshot`: a sentence encoder, or an NLI
checkpoint) and the same batcher and metrics as a classifier's server. A request is checked (its
texts against the limits; its labels and template as the Python API checks them, the error naming
the field, so 422), tokenized by the model's own stage 1, queued, and its rows' stage-2 outputs
(pooled states, or NLI logits for every (text, hypothesis) pair) post-processed by the model's own
stage 3 into transformers' `{"sequence", "labels", "scores"}`. Requests with different labels
still share micro-batches: for a sentence encoder a row is the text alone. Its label prompts are
embedded once per label set and template and kept by the model (`label_embeddings`), on the
engine thread, before the request's rows are queued. `/embed` runs the same encoder's rows
through the same batcher and normalizes them (`Embedder.embed`'s last step).
"""

from __future__ import annotations

import functools
import gc
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio

from clearpipe.errors import InputError
from clearpipe.server import schemas
from clearpipe.server.batcher import Batcher
from clearpipe.server.config import ServerConfig
from clearpipe.server.metrics import Metrics
from clearpipe.server.service import Classified, check_text
from clearpipe.tokens import Tokenized
from clearpipe.zeroshot.classifier import ZeroShotClassifier, ZeroShotModel, check_count
from clearpipe.zeroshot.embedder import Embedder, normalize
from clearpipe.zeroshot.labels import Label, check_template
from clearpipe.zeroshot.scoring import ZeroShotPredictions

log = logging.getLogger("clearpipe.server")

_INLINE_TOKENIZE_CHARS = 4096  # as `service`: below this, a thread hop costs more than tokenizing
T = TypeVar("T")
Disconnected = Callable[[], Awaitable[object]] | None


@dataclass
class ZeroShotService:
    """The routes' shared state on a zero-shot server; see the module docstring."""

    classifier: ZeroShotModel
    config: ServerConfig
    metrics: Metrics = field(default_factory=Metrics)
    ready: bool = False

    def __post_init__(self) -> None:
        self.batcher = Batcher(self.classifier.forward, self.config, self.metrics)

    @property
    def embedder(self) -> Embedder | None:
        """The sentence encoder, or None for an NLI model (which has no embeddings to give)."""
        clf = self.classifier
        return clf.embedder if isinstance(clf, ZeroShotClassifier) else None

    async def warm_up(self) -> None:
        """One call through every stage on the engine thread, then ready (as `Service.warm_up`)."""
        await self.batcher.run_exclusive(self.classifier.predict, ["warm up"], ["yes", "no"])
        gc.freeze()
        self.ready = True
        log.info("clearpipe: zero-shot model %s ready", self.classifier.source)

    async def classify(self, body: schemas.ZeroShotRequest, disconnected: Disconnected = None) -> Classified:
        """Answer one zero-shot `/classify` body: one `{"sequence", "labels", "scores"}` per text
        (a dict for a text, a list for a list); raise `InputError` or the batcher's errors.

        >>> (await service.classify(ZeroShotRequest(inputs="goal!", candidate_labels="sports,news"))).output  # doctest: +SKIP
        {'sequence': 'goal!', 'labels': ['sports', 'news'], 'scores': [0.93, 0.07]}
        """
        started = time.monotonic()
        clf = self.classifier
        texts = self._texts(body.inputs, "inputs")
        labels, template = self._labels(body)
        if not texts:  # checked like any request, answered like the Python API: no answers
            return Classified([], {})
        await self._embed_labels(labels, template)
        tokenized = await _off_loop(functools.partial(clf.tokenize, labels=labels, template=template), texts)
        outputs, headers = await self._run(tokenized, disconnected, started)
        scores = clf.postprocess(outputs, labels, template, body.multi_label)
        answers = ZeroShotPredictions(texts, labels, scores, body.multi_label).to_output()
        return Classified(answers[0] if isinstance(body.inputs, str) else answers, headers)

    async def embed(self, body: schemas.EmbedRequest, disconnected: Disconnected = None) -> Classified:
        """Answer one `/embed` body: `{"embeddings", "dim", "model"}`, unit-length float vectors.

        >>> (await service.embed(EmbedRequest(texts=["a cat"]))).output["dim"]  # doctest: +SKIP
        384
        """
        started = time.monotonic()
        embedder = self.embedder
        if embedder is None:
            raise InputError(
                f"/embed needs a sentence encoder; this server runs the NLI model {self.classifier.source}"
            )
        texts = self._texts(body.texts, "texts")
        if not texts:
            return Classified({"embeddings": [], "dim": embedder.width, "model": embedder.source}, {})
        tokenized = await _off_loop(embedder.tokenize, texts)
        outputs, headers = await self._run(tokenized, disconnected, started)
        vectors = normalize(outputs).tolist()
        return Classified({"embeddings": vectors, "dim": embedder.width, "model": embedder.source}, headers)

    def info(self, version: str) -> schemas.ZeroShotInfo:
        """What `/info` says of this server: the model, its kind and defaults, the limits."""
        clf, config = self.classifier, self.config
        if isinstance(clf, ZeroShotClassifier):
            settings = (clf.embedder.max_length, clf.embedder.dtype, str(clf.embedder.model.device))
        else:
            inner = clf.classifier  # type: ignore[attr-defined]
            settings = (inner.max_length, inner.settings.dtype, str(inner.device))
        return schemas.ZeroShotInfo(
            model=clf.source,
            kind="similarity" if self.embedder is not None else "nli",
            template=clf.template,
            max_length=settings[0],
            dtype=settings[1],
            device=settings[2],
            version=version,
            embed=self.embedder is not None,
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

    def _texts(self, given: str | list[str], name: str) -> list[str]:
        texts = [given] if isinstance(given, str) else list(given)
        if len(texts) > self.config.max_inputs:
            raise InputError(
                f"too many {name}: {len(texts)} in one request, the limit is {self.config.max_inputs}"
            )
        for i, text in enumerate(texts):
            check_text(text, self.config.max_chars, where=f"{name} {i}")
        return texts

    def _labels(self, body: schemas.ZeroShotRequest) -> tuple[list[Label], str | None]:
        """The request's labels and template, checked; an error names the field it is about."""
        try:
            labels = self.classifier.labels(body.candidate_labels)
            check_count(labels, body.multi_label)
        except InputError as exc:
            raise InputError(f"candidate_labels: {exc}") from None
        if body.hypothesis_template is not None:
            check_template(body.hypothesis_template)  # its message names hypothesis_template
        return labels, body.hypothesis_template

    async def _embed_labels(self, labels: Sequence[Label], template: str | None) -> None:
        """Embed a new label set's prompts on the engine thread (the model is not shared across
        threads); a label set seen before is kept by the model and costs nothing here."""
        clf = self.classifier
        if (
            isinstance(clf, ZeroShotClassifier)
            and clf.label_embeddings(labels, template, compute=False) is None
        ):
            await self.batcher.run_exclusive(clf.label_embeddings, labels, template)

    async def _run(
        self, tokenized: Tokenized, disconnected: Disconnected, started: float
    ) -> tuple[Any, dict[str, str]]:
        """The rows' stage-2 outputs through the batcher, and the timing headers."""
        tokenized_at = time.monotonic()
        answer = await self.batcher.result(self.batcher.submit(tokenized), disconnected=disconnected)
        headers = {
            "X-Tokenization-Time": _ms(tokenized_at - started),
            "X-Queue-Time": _ms(answer.queue_s),
            "X-Inference-Time": _ms(answer.inference_s),
            "X-Total-Time": _ms(time.monotonic() - started),
            "X-Batch-Size": str(answer.batch_inputs),
        }
        return answer.logits, headers


async def _off_loop(tokenize: Callable[[list[str]], T], texts: list[str]) -> T:
    if sum(len(text) for text in texts) <= _INLINE_TOKENIZE_CHARS:
        return tokenize(texts)
    return await anyio.to_thread.run_sync(tokenize, texts)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f}"
