"""`POST /classify` for a token-classification (NER) model: each text's entities.

The texts are tokenized first (off the event loop when long) and the request is refused with 413
when its windows hold more than `max_request_tokens` tokens, as a classification request is
(`Batcher.check_tokens`); then stages 2-3 run on the batcher's engine thread between micro-batches
(`Batcher.run_exclusive`), as one call of the classifier (token-budget batches within the request;
no sharing of passes with other requests, whose rows carry one vector each). The answer is the Python API's: a list of
`{"entity_group", "score", "word", "start", "end"}` for a text, a list of such lists for a list.
"""

from __future__ import annotations

import time
from typing import Any

import anyio

from clearpipe.entities.aggregation import check_strategy
from clearpipe.entities.tagger import check_ignore
from clearpipe.errors import InputError
from clearpipe.server import schemas
from clearpipe.server.batcher import Batcher
from clearpipe.server.config import ServerConfig

_INLINE_TOKENIZE_CHARS = 4096
"""Below this many characters a request is tokenized on the event loop (as `service` does)."""

SEQUENCE_FIELDS = ("top_k", "function_to_apply", "long_text", "min_score")
"""Request fields that mean something to sequence classifiers only."""

TOKEN_FIELDS = ("aggregation_strategy", "ignore_labels")
"""Request fields that mean something to token classifiers only (transformers' call options)."""


def finds_entities(classifier: object) -> bool:
    """Whether the served classifier finds entities (`clearpipe.entities.TokenClassifier`, or with
    `--lite` a `clearpipe.lite.entities.LiteTokenClassifier`): its `task` says so."""
    return getattr(classifier, "task", None) == "token-classification"


async def classify_entities(
    classifier: Any, batcher: Batcher, config: ServerConfig, body: schemas.ClassifyRequest
) -> tuple[Any, dict[str, str]]:
    """The entities of one request's texts and its timing header; `InputError` (422) for pairs,
    sequence-only fields, or texts over the limits, the batcher's `TooLarge` (413) for a request
    over `max_request_tokens`.

    >>> await classify_entities(ner, service.batcher, config, ClassifyRequest(inputs="Ada met Alan"))  # doctest: +SKIP
    ([{'entity_group': 'PER', ...}], {'X-Total-Time': '3.2'})
    """
    started = time.monotonic()
    given = sorted(name for name in SEQUENCE_FIELDS if name in body.model_fields_set)
    if given:
        raise InputError(f"{', '.join(given)}: not for a token-classification (NER) model")
    single = isinstance(body.inputs, str)
    texts = [body.inputs] if single else list(body.inputs)
    if len(texts) > config.max_inputs:
        raise InputError(f"too many inputs: {len(texts)} in one request, the limit is {config.max_inputs}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"input {i}: a NER model takes texts, not pairs")
        if len(text) > config.max_chars:
            raise InputError(f"input {i} has {len(text)} characters, the limit is {config.max_chars}")
    # Checked before the engine runs, with the Python API's messages.
    strategy = check_strategy(body.aggregation_strategy) if body.aggregation_strategy is not None else None
    ignored = check_ignore(body.ignore_labels) if body.ignore_labels is not None else None
    found: list[Any] = []
    if texts:
        if sum(len(text) for text in texts) <= _INLINE_TOKENIZE_CHARS:
            cut = classifier.tokenize(texts)
        else:
            cut = await anyio.to_thread.run_sync(classifier.tokenize, texts)
        batcher.check_tokens(cut.tokenized)  # before the engine thread: 413, never held
        found = await batcher.run_exclusive(_entities, classifier, cut, strategy, ignored)
    headers = {"X-Total-Time": f"{(time.monotonic() - started) * 1000:.3f}"}
    return (found[0] if single else found), headers


def _entities(
    classifier: Any, cut: Any, strategy: str | None, ignored: tuple[str, ...] | None
) -> list[list[dict[str, object]]]:
    """Stages 2-3 of tokenized texts (`Tagger.tokenize`'s windows): each text's entity dicts, with
    the request's strategy and ignored labels (None: the classifier's defaults), as
    `classifier(texts, aggregation_strategy=..., ignore_labels=...)` answers."""
    logits = classifier.logits(cut)
    return [
        [entity.to_dict() for entity in classifier.postprocess(spans, one, strategy, ignored)]
        for spans, one in zip(cut.inputs, logits, strict=True)
    ]
