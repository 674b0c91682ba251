"""Stage 3, post-processing: logits -> probabilities -> labels, and clearpipe's output contract.

The output contract, shared by the Python API, the CLI's JSON and the HTTP server:

* without `top_k`: one `{"label": str, "score": float}` per input (the best label);
* with `top_k=k`: a list of the k best `{"label", "score"}` per input, highest score first;
* with `top_k=None`: the same list with every label.

A single input gives a single result; a list gives a list. Nothing else changes the shape.

One addition: with `long_text="chunk"` (see `clearpipe.longtext`) every `{"label", "score"}` also
carries `"windows": n`, the number of `max_length` windows the input was classified in. Truncate
mode (the default) never adds the key.

Scores, decisions and abstention (keys are only ever added, never a shape changed):

* Calibration: a softmax model whose config.json holds `clearpipe_calibration` (written by
  `clearpipe train` or `clearpipe calibrate`) has its logits divided by the saved temperature
  (`Temperature`) before the softmax. Labels and their order never change; `calibrated=False`
  gives the raw softmax.
* Multi-label models (`problem_type` `multi_label_classification`, sigmoid scores): every
  `{"label", "score"}` also carries `"applies": bool`, whether the score reaches that label's
  threshold (`label_thresholds` in config.json, saved by `clearpipe train`; 0.5 without one). The
  shapes are those above, so `top_k=None` lists every label with its decision, and the labels
  that apply are those with `"applies": true`, possibly none.
* Abstention: with `min_score` set (single-label softmax models only), every `{"label", "score"}`
  also carries `"decided": bool`, whether its score reaches `min_score`. A best label with
  `"decided": false` means "not sure": the label is still the model's best guess, never replaced.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, NotRequired, TypedDict

import numpy as np

from clearpipe.errors import CheckpointError, InputError

if TYPE_CHECKING:  # only read by attribute: `clearpipe.lite` passes config.json as a namespace
    from transformers import PretrainedConfig

CALIBRATION_KEY = "clearpipe_calibration"
"""config.json key holding a fitted temperature (see `clearpipe.training.calibration`)."""
THRESHOLDS_KEY = "label_thresholds"
"""config.json key holding the per-label decision thresholds of a multi-label model."""


class LabelScore(TypedDict):
    """One label and its score: the unit of clearpipe's output contract."""

    label: str
    score: float
    windows: NotRequired[int]  # only with long_text="chunk"
    applies: NotRequired[bool]  # only for multi-label models: the score reaches the label's threshold
    decided: NotRequired[bool]  # only with min_score: the score reaches it


class _Best(enum.Enum):
    BEST = "best"


BEST: Final = _Best.BEST
"""The default `top_k`: one best `{"label", "score"}` per input instead of a ranked list."""

TopK = int | None | _Best
Output = LabelScore | list[LabelScore]


class Activation(enum.StrEnum):
    """How logits become scores."""

    SOFTMAX = "softmax"
    SIGMOID = "sigmoid"
    NONE = "none"


def parse_activation(value: str | Activation) -> Activation:
    """Parse "softmax", "sigmoid" or "none" (any case).

    >>> parse_activation("Sigmoid")
    <Activation.SIGMOID: 'sigmoid'>
    """
    try:
        return Activation(str(value.value if isinstance(value, Activation) else value).lower())
    except ValueError:
        raise InputError(f'function_to_apply must be "softmax", "sigmoid" or "none", got {value!r}') from None


def default_activation(config: PretrainedConfig) -> Activation:
    """Pick the activation the way transformers' text-classification pipeline does.

    Multi-label checkpoints and single-logit ones get a sigmoid, regression none, the rest softmax.

    >>> default_activation(BertConfig(num_labels=3))
    <Activation.SOFTMAX: 'softmax'>
    """
    if config.problem_type == "regression":
        return Activation.NONE
    if config.problem_type == "multi_label_classification" or config.num_labels == 1:
        return Activation.SIGMOID
    return Activation.SOFTMAX


def activate(logits: np.ndarray, activation: Activation) -> np.ndarray:
    """Apply the activation row-wise to (batch, num_labels) logits.

    >>> activate(np.array([[0.0, 0.0]]), Activation.SOFTMAX)
    array([[0.5, 0.5]])
    """
    if activation is Activation.SOFTMAX:
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return shifted / shifted.sum(axis=-1, keepdims=True)
    if activation is Activation.SIGMOID:
        return 1.0 / (1.0 + np.exp(-logits))
    return logits


def is_multi_label(config: PretrainedConfig) -> bool:
    return config.problem_type == "multi_label_classification"


@dataclass(frozen=True)
class Temperature:
    """A temperature fitted for a model's softmax logits (see `clearpipe.training.calibration`).

    With `power` 1 (method "temperature", Guo et al. 2017) every row is divided by `value`.
    Otherwise (method "margin_temperature") a row's temperature is `value * margin ** (1 - power)`,
    margin being the gap between its two best logits, so that the gap becomes
    `margin ** power / value`: confidence then grows with the margin at a fitted rate. A row's
    temperature stays within `TEMPERATURE_BOUNDS`, as a plain one does, so that no row is scaled
    so far that the softmax can no longer tell its labels apart. Either way a row is divided by
    one positive number, so its best label never changes.

    >>> Temperature(2.0).apply(np.array([[0.0, 4.0]]))
    array([[0., 2.]])
    """

    value: float
    power: float = 1.0

    @property
    def method(self) -> str:
        return "temperature" if self.power == 1.0 else "margin_temperature"

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Scale (batch, num_labels) logits row by row."""
        if self.power == 1.0:
            return logits / self.value
        top2 = np.sort(logits, axis=-1)[:, -2:]  # (B, 2)
        margin = np.maximum(top2[:, 1] - top2[:, 0], _MIN_MARGIN)  # (B,)
        per_row = np.clip(self.value * margin ** (1.0 - self.power), *TEMPERATURE_BOUNDS)  # (B,)
        return logits / per_row[:, None]

    def to_dict(self) -> dict[str, str | float]:
        extra = {} if self.power == 1.0 else {"power": self.power}
        return {"method": self.method, "temperature": self.value, **extra}


TEMPERATURE_BOUNDS = (0.05, 20.0)
"""Temperatures clearpipe fits and applies: from 20x sharper to 20x softer than the raw softmax."""
_MIN_MARGIN = 1e-6  # a tie's margin, kept off zero so that its power stays finite


def saved_temperature(config: PretrainedConfig) -> Temperature | None:
    """The temperature saved under `clearpipe_calibration` in config.json, or None.

    >>> saved_temperature(clf.model.config)  # doctest: +SKIP
    Temperature(value=1.84, power=1.0)
    """
    saved = getattr(config, CALIBRATION_KEY, None)
    if saved is None:
        return None
    fields = saved if isinstance(saved, dict) else {}
    value, power = fields.get("temperature"), fields.get("power", 1.0)
    method = "temperature" if power == 1.0 else "margin_temperature"
    # A hand-edited or foreign key must not silently turn into wrong scores.
    if fields.get("method") != method or not all(_positive(x) for x in (value, power)):
        raise CheckpointError(
            f'config.json\'s "{CALIBRATION_KEY}" is not a temperature clearpipe can apply: {saved!r:.200}; '
            "rerun `clearpipe calibrate`, or load with calibrated=False (--no-calibration)"
        )
    return Temperature(float(value), float(power))


def _positive(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and 0 < x < np.inf


def saved_thresholds(config: PretrainedConfig, labels: list[str]) -> np.ndarray | None:
    """A multi-label model's per-label thresholds from config.json, in label order (0.5 where
    none is saved); None for other models.

    >>> saved_thresholds(clf.model.config, clf.labels)  # doctest: +SKIP
    array([0.35, 0.6 , 0.5 ])
    """
    if not is_multi_label(config):
        return None
    saved = getattr(config, THRESHOLDS_KEY, None) or {}
    return np.asarray([float(saved.get(name, 0.5)) for name in labels])


@dataclass(frozen=True)
class Predictions:
    """Scores for a batch: `scores` is (batch, num_labels), columns in the order of `labels`.

    `windows` (batch,) counts the windows each input was classified in; None unless chunked.
    `temperature` is the one the logits were scaled by (None: raw); `thresholds` (num_labels,)
    decide which labels of a multi-label model apply (None for single-label scores).
    """

    scores: np.ndarray
    labels: list[str]
    activation: Activation
    windows: np.ndarray | None = None
    temperature: Temperature | None = None
    thresholds: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def best(self) -> np.ndarray:
        """Index of the best label per row, shape (batch,)."""
        return self.scores.argmax(axis=-1)

    def decided(self, min_score: float) -> np.ndarray:
        """Whether each row's best score reaches `min_score`, shape (batch,): False is "not sure"."""
        return self.scores.max(axis=-1) >= min_score

    def applies(self) -> np.ndarray | None:
        """Which labels apply (batch, num_labels) by their thresholds; None for single-label scores."""
        return None if self.thresholds is None else self.scores >= self.thresholds[None, :]

    def to_output(self, top_k: TopK = BEST, min_score: float | None = None) -> list[Output]:
        """Format every row by the output contract (see the module docstring).

        >>> Predictions(np.array([[0.2, 0.8]]), ["neg", "pos"], Activation.SOFTMAX).to_output()
        [{'label': 'pos', 'score': 0.8}]
        """
        if top_k is BEST:
            return [
                self._one(i, int(j), float(self.scores[i, j]), min_score) for i, j in enumerate(self.best)
            ]
        return [self._ranked(i, row, top_k, min_score) for i, row in enumerate(self.scores)]

    def _one(self, row: int, label: int, score: float, min_score: float | None = None) -> LabelScore:
        result = LabelScore(label=self.labels[label], score=score)
        if self.windows is not None:
            result["windows"] = int(self.windows[row])
        if self.thresholds is not None:
            result["applies"] = bool(score >= self.thresholds[label])
        if min_score is not None:
            result["decided"] = bool(score >= min_score)
        return result

    def _ranked(
        self, i: int, row: np.ndarray, top_k: int | None, min_score: float | None
    ) -> list[LabelScore]:
        ranked = [self._one(i, j, float(s), min_score) for j, s in enumerate(row)]
        # A stable sort keeps label order among equal scores, as transformers does.
        ranked.sort(key=lambda x: x["score"], reverse=True)
        return ranked if top_k is None else ranked[:top_k]


def postprocess(
    logits: np.ndarray,
    labels: list[str],
    activation: Activation,
    temperature: Temperature | None = None,
    thresholds: np.ndarray | None = None,
) -> Predictions:
    """Turn (batch, num_labels) logits into scores for each label.

    A `temperature` divides softmax logits (it was fitted for softmax; sigmoid and raw scores
    ignore it), which changes scores but never their order. `thresholds` go with sigmoid scores,
    the ones they were tuned on.

    >>> postprocess(np.array([[0.0, 2.0]]), ["neg", "pos"], Activation.SOFTMAX).to_output()
    [{'label': 'pos', 'score': 0.8807970779778823}]
    """
    if logits.ndim != 2 or logits.shape[1] != len(labels):
        raise ValueError(f"expected logits of shape (batch, {len(labels)}), got {tuple(logits.shape)}")
    logits = logits.astype(np.float64, copy=False)  # (B, L)
    temperature = temperature if activation is Activation.SOFTMAX else None
    if temperature is not None:
        logits = temperature.apply(logits)
    return Predictions(
        scores=activate(logits, activation),
        labels=labels,
        activation=activation,
        temperature=temperature,
        thresholds=thresholds if activation is Activation.SIGMOID else None,
    )


def check_min_score(min_score: float | None, activation: Activation) -> float | None:
    """Validate a user's `min_score`: None, or a probability for single-label softmax scores."""
    if min_score is None:
        return None
    if isinstance(min_score, bool) or not isinstance(min_score, int | float) or not 0 <= min_score <= 1:
        raise InputError(f"min_score must be a number from 0 to 1, got {min_score!r}")
    if activation is not Activation.SOFTMAX:
        raise InputError(
            f"min_score applies to softmax scores (single-label models); these are {activation.value} "
            "scores (a multi-label model decides each label by its threshold instead)"
        )
    return float(min_score)


def check_top_k(top_k: TopK, num_labels: int) -> TopK:
    """Validate a user's `top_k`: a positive int (capped at the label count), None or BEST."""
    if top_k is BEST or top_k is None:
        return top_k
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise InputError(f"top_k must be a positive integer or None (all labels), got {top_k!r}")
    return min(top_k, num_labels)


@dataclass(frozen=True)
class Scoring:
    """Stage 3 as a classifier holds it, the same for `clearpipe.Classifier` and `clearpipe.lite`:
    the labels, the activation (the model's own unless `function_to_apply` chose one), the saved
    temperature (None: raw softmax), a multi-label model's thresholds, and the default `min_score`.

    >>> Scoring(["neg", "pos"], Activation.SOFTMAX).postprocess(np.array([[0.0, 2.0]])).best
    array([1])
    """

    labels: list[str]
    activation: Activation
    temperature: Temperature | None = None
    thresholds: tuple[float, ...] | None = None
    min_score: float | None = None

    @classmethod
    def of(
        cls,
        config: PretrainedConfig,
        labels: list[str],
        saved_names: list[str] | None = None,
        function_to_apply: str | Activation | None = None,
        calibrated: bool = True,
        min_score: float | None = None,
    ) -> Scoring:
        """Stage 3 of a checkpoint whose config.json is `config`; `saved_names` are the label names
        its thresholds are saved under (default: `labels`, which may rename them).

        >>> Scoring.of(clf.model.config, ["neg", "pos"]).activation  # doctest: +SKIP
        <Activation.SOFTMAX: 'softmax'>
        """
        activation = (
            default_activation(config) if function_to_apply is None else parse_activation(function_to_apply)
        )
        thresholds = saved_thresholds(config, list(saved_names or labels))
        return cls(
            labels=list(labels),
            activation=activation,
            temperature=saved_temperature(config) if calibrated else None,
            thresholds=None if thresholds is None else tuple(float(t) for t in thresholds),
            min_score=check_min_score(min_score, activation),
        )

    def activation_for(self, function_to_apply: str | Activation | None = None) -> Activation:
        """The caller's activation, else the model's own."""
        return self.activation if function_to_apply is None else parse_activation(function_to_apply)

    def postprocess(
        self, logits: np.ndarray, function_to_apply: str | Activation | None = None, calibrated: bool = True
    ) -> Predictions:
        """Logits -> scores, with the saved temperature (unless `calibrated=False`) and thresholds."""
        thresholds = None if self.thresholds is None else np.asarray(self.thresholds)
        temperature = self.temperature if calibrated else None
        activation = self.activation_for(function_to_apply)
        return postprocess(np.asarray(logits), self.labels, activation, temperature, thresholds)

    def check_min_score(
        self, min_score: float | None, function_to_apply: str | Activation | None = None
    ) -> float | None:
        """The `min_score` a call uses: its own, else this default; checked against the scores it
        would apply to (softmax only)."""
        chosen = self.min_score if min_score is None else min_score
        return check_min_score(chosen, self.activation_for(function_to_apply))

    def check_call(
        self, top_k: TopK, min_score: float | None, function_to_apply: str | Activation | None = None
    ) -> tuple[TopK, float | None]:
        """A call's `top_k` and `min_score`, checked before any work is done."""
        return check_top_k(top_k, len(self.labels)), self.check_min_score(min_score, function_to_apply)


class ScoringView:
    """Settings that read stage 3's choices from their `scoring` (a mixin of both classifiers'
    settings, so that front ends read `settings.activation` whichever classifier they hold)."""

    scoring: Scoring

    @property
    def activation(self) -> Activation:
        return self.scoring.activation

    @property
    def temperature(self) -> Temperature | None:
        return self.scoring.temperature

    @property
    def thresholds(self) -> tuple[float, ...] | None:
        return self.scoring.thresholds

    @property
    def min_score(self) -> float | None:
        return self.scoring.min_score
