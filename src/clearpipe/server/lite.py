"""`clearpipe serve --lite`: the server over a `clearpipe.lite` classifier, without torch.

`LiteServed` gives a lite classifier the few methods and settings the service, the batcher and
`/info` call on a `Classifier` (tokenize, logits of tokenized rows, post-processing, warm-up, the
minimum score), so requests take the same path: micro-batches of tokenized rows, each request
post-processed with its own options. What lite leaves out answers as a client error: `/explain`
(tracing needs the full classifier) and `long_text: "chunk"`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from clearpipe.engine.exported import export_kind
from clearpipe.errors import InputError
from clearpipe.postprocess import Activation, Predictions, Temperature
from clearpipe.tokens import Tokenized

if TYPE_CHECKING:
    from clearpipe.inputs import TextInput
    from clearpipe.lite import LiteClassifier


@dataclass(frozen=True)
class LiteSettings:
    """What the server reads from a classifier's settings, for a lite one."""

    dtype: str  # shown by /info: "lite openvino int8-dynamic", say
    activation: Activation
    temperature: Temperature | None
    thresholds: tuple[float, ...] | None
    min_score: float | None
    long_text: str = "truncate"


class LiteServed:
    """A `clearpipe.lite` classifier in the shape the server drives; see the module docstring.

    >>> app = create_app(LiteServed(lite.load("exported-int8/")), ServerConfig())  # doctest: +SKIP
    """

    device = "cpu"
    packs = False  # lite pads each batch to its longest row

    def __init__(self, clf: LiteClassifier, min_score: float | None = None) -> None:
        self.clf = clf
        self.source = clf.source
        self.labels = list(clf.labels)
        self.max_length = clf.max_length
        self.settings = LiteSettings(
            dtype=f"lite {export_kind(clf.source)}",
            activation=clf.activation,
            temperature=clf.temperature,
            thresholds=clf.thresholds,
            min_score=clf.check_min_score(min_score),
        )

    def tokenize(self, items: list[TextInput]) -> Tokenized:
        return self.clf.tokenize(items)

    def logits(self, tokenized: Tokenized) -> np.ndarray:
        return self.clf.logits_of(tokenized)

    def postprocess(
        self, logits: np.ndarray, function_to_apply: str | Activation | None = None
    ) -> Predictions:
        return self.clf.postprocess(logits, function_to_apply)

    def check_min_score(
        self, min_score: float | None, function_to_apply: str | Activation | None = None
    ) -> float | None:
        """A request's `min_score`, else the server's, checked against the scores it applies to."""
        chosen = self.settings.min_score if min_score is None else min_score
        return self.clf.check_min_score(chosen, function_to_apply)

    def warmup(self) -> None:
        self.clf.predict(["warm up " * 4, "warm up " * 30])

    def tokenize_windows(self, items: list[TextInput]) -> NoReturn:
        raise InputError('long_text "chunk" needs the full classifier; this server runs --lite')

    def trace(self, text: str, pair: str | None = None, attributions: bool = True) -> Any:
        raise InputError("/explain traces with the full classifier; this server runs --lite")
