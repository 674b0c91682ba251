"""What every classifier offers the front ends, and the one way a call becomes outputs.

`TextClassifier` is the shape the CLI, bulk prediction, the server and `trace` name, met by
`clearpipe.Classifier` (a checkpoint or an export, with torch) and `clearpipe.lite.LiteClassifier`
(an export, without torch). It is typed by shape so that nothing below the classifiers imports
them, and torch-free so that `--lite` front ends never load torch. `answer` is both classifiers'
`__call__`: inputs normalized, `top_k` and `min_score` checked before any work, stage 3's output
contract (`clearpipe.postprocess.Predictions.to_output`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from clearpipe.inputs import TextInput, normalize_inputs
from clearpipe.postprocess import Activation, Output, Predictions, Scoring, TopK

if TYPE_CHECKING:
    import numpy as np

    from clearpipe.engine.loop import Budget, Referee, Runner
    from clearpipe.longtext import Windows
    from clearpipe.tokens import Tokenized


class Settings(Protocol):
    """What front ends read of a classifier's resolved settings."""

    scoring: Scoring
    dtype: str  # shown by /info: "bfloat16", "openvino", "lite onnx", ...
    long_text: str  # the default
    long_text_modes: tuple[str, ...]  # what a call may ask for

    @property
    def activation(self) -> Activation: ...

    @property
    def min_score(self) -> float | None: ...


class TextClassifier(Protocol):
    """A classifier as every front end drives it; see the module docstring."""

    source: str
    settings: Settings
    runner: Runner
    referee: Referee | None

    @property
    def labels(self) -> list[str]: ...

    @property
    def max_length(self) -> int: ...

    @property
    def long_text(self) -> str: ...

    @property
    def thresholds(self) -> tuple[float, ...] | None: ...

    @property
    def budget(self) -> Budget: ...

    def tokenize(self, items: Sequence[TextInput], keep_encodings: bool = False) -> Tokenized: ...

    def tokenize_windows(self, items: Sequence[TextInput]) -> Windows: ...

    def combine_windows(self, per_window: Predictions, windows: Windows) -> Predictions: ...

    def logits(self, tokenized: Tokenized) -> np.ndarray: ...

    def postprocess(
        self, logits: np.ndarray, function_to_apply: str | Activation | None = None
    ) -> Predictions: ...

    def predict_items(
        self, items: Sequence[TextInput], function_to_apply: str | Activation | None = None
    ) -> Predictions: ...

    def check_min_score(
        self, min_score: float | None, function_to_apply: str | Activation | None = None
    ) -> float | None: ...

    def warmup(self) -> None: ...

    def trace(self, text: str, pair: str | None = None, attributions: bool = True) -> Any: ...


def answer(
    clf: TextClassifier,
    inputs: object,
    top_k: TopK,
    function_to_apply: str | Activation | None = None,
    min_score: float | None = None,
) -> Output | list[Output]:
    """`clf(inputs, ...)`: one result for one input, a list for a list, by the output contract.

    >>> answer(clf, "what a lovely day", BEST)  # doctest: +SKIP
    {'label': 'positive', 'score': 0.98}
    """
    top_k, min_score = clf.settings.scoring.check_call(top_k, min_score, function_to_apply)
    batch = normalize_inputs(inputs)
    predictions = clf.predict_items(batch.items, function_to_apply) if batch.items else None
    outputs = [] if predictions is None else predictions.to_output(top_k, min_score)
    return outputs[0] if batch.single else outputs
