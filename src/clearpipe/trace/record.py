"""`Trace`: one prediction followed through its five stages, and `trace` to record one.

The stages are the classifier's own: `Classifier.tokenize`/`collate` (keeping the tokenizer's
encodings), `forward_recorded` (the model call of `forward`, also returning hidden states and
attention weights) and `Classifier.postprocess`. Nothing here re-implements a stage, so a trace
cannot drift from what `clf(text)` computes.

`Trace.to_dict()` is the JSON form, versioned by `SCHEMA_VERSION` and described by the JSON Schema
in `schema.json` next to this module (documented in docs/TRACE.md).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from transformers import PretrainedConfig

from clearpipe.contract import TextClassifier
from clearpipe.engine import loop
from clearpipe.errors import InputError
from clearpipe.forward import Recorded, forward_recorded
from clearpipe.inputs import TextInput
from clearpipe.pooled import is_pooled
from clearpipe.postprocess import Activation, default_activation
from clearpipe.preprocess import Encoded
from clearpipe.tokens import Tokenized
from clearpipe.trace.attributions import Attributions, baseline_token, integrated_gradients

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tokenizers import Encoding

SCHEMA_VERSION = 1
"""Bumped whenever a key is renamed or removed or changes type; new keys do not bump it."""

SCHEMA_PATH = Path(__file__).with_name("schema.json")
TOP_ATTENDED = 3
"""How many tokens each layer lists as the ones the first position attends to most."""

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Token:
    """One token of the model's input.

    `segment` is 0 for the text, 1 for the pair, None for special tokens; `span` is the
    [start, end) range of characters in that segment's string (None for special tokens), and
    `word` the index of the word it belongs to within its segment. `attribution` is filled in
    when attributions were computed.
    """

    index: int
    id: int
    token: str
    special: bool
    segment: int | None
    span: tuple[int, int] | None
    word: int | None
    type_id: int | None
    attention_mask: int
    attribution: float | None = None


@dataclass(frozen=True)
class InputStage:
    """Stage 1: the raw text (and pair) as given."""

    text: str
    pair: str | None
    time_ms: float

    @property
    def segments(self) -> list[str]:
        return [self.text] if self.pair is None else [self.text, self.pair]

    @property
    def shape(self) -> Shape:
        """Characters per segment."""
        return tuple(len(s) for s in self.segments)


@dataclass(frozen=True)
class TokenizerStage:
    """Stage 2: tokens with ids, spans and masks; `kept_chars[s]` is where segment s's kept tokens end."""

    tokens: list[Token]
    shape: Shape
    has_token_type_ids: bool
    truncated: bool
    kept_chars: list[int]
    time_ms: float


@dataclass(frozen=True)
class Layer:
    """One transformer layer's output: its shape, the mean vector norm over tokens, and the tokens
    the first position attends to most (index, weight averaged over heads), if weights were returned."""

    index: int
    shape: Shape
    mean_norm: float
    first_attends: list[tuple[int, float]] | None


@dataclass(frozen=True)
class Recheck:
    """An int8 close call re-run in float (see `clearpipe.engine.recheck`): what int8 gave, and why not."""

    fast_logits: list[float]
    margin: float
    dtype: str


@dataclass(frozen=True)
class ModelStage:
    """Stage 3: embeddings -> layers -> pooled / first-token vector -> logits.

    `recheck` is set when an int8 classifier's logits were a close call and the stage shows its
    float referee's run instead. An exported graph shows only its logits: `embedding_shape`,
    `embedding_mean_norm` and the pooled vector are None, `layers` is empty, and `unavailable`
    says why.
    """

    embedding_shape: Shape | None
    embedding_mean_norm: float | None
    layers: list[Layer]
    pooled_kind: str | None
    pooled_shape: Shape | None
    logits: list[float]
    logits_shape: Shape
    attention: str
    time_ms: float
    recheck: Recheck | None = None
    unavailable: str | None = None


@dataclass(frozen=True)
class ActivationStage:
    """Stage 4: the function turning logits into scores, why it was chosen, and the score per label.

    `temperature` is the saved calibration the logits were scaled by before a softmax
    (`Temperature.to_dict()`: method, temperature and, for a margin temperature, power); None
    when the scores are raw.
    """

    function: str
    reason: str
    probabilities: dict[str, float]
    time_ms: float
    temperature: dict[str, str | float] | None = None


@dataclass(frozen=True)
class PredictionStage:
    """Stage 5: the predicted label and its score, as `clf(text)` returns them."""

    label: str
    label_id: int
    score: float
    time_ms: float


@dataclass(frozen=True)
class Trace:
    """One prediction through its five stages, with token attributions when asked for.

    >>> t = clf.trace("a good film")  # doctest: +SKIP
    >>> t.prediction.label, [tok.token for tok in t.tokenizer.tokens]  # doctest: +SKIP
    ('positive', ['[CLS]', 'a', 'good', 'film', '[SEP]'])
    """

    model_source: str
    labels: list[str]
    input: InputStage
    tokenizer: TokenizerStage
    model: ModelStage
    activation: ActivationStage
    prediction: PredictionStage
    attributions: Attributions | None
    unavailable: list[dict[str, str]] | None = None  # what this trace could not show, and why

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see `schema.json`): plain dicts, lists, strings and numbers.

        >>> json.dumps(clf.trace("fine").to_dict())  # doctest: +SKIP
        """
        return {
            "schema": "clearpipe.trace",
            "schema_version": SCHEMA_VERSION,
            "model": self.model_source,
            "labels": list(self.labels),
            "stages": [
                _input_dict(self.input),
                _tokenizer_dict(self.tokenizer),
                _model_dict(self.model, self.tokenizer.tokens),
                _activation_dict(self.activation, self.model),
                _prediction_dict(self.prediction, self.activation),
            ],
            "attributions": None if self.attributions is None else self.attributions.to_dict(),
            "unavailable": self.unavailable,
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)


class Traced(TextClassifier, Protocol):
    """What `trace` needs of a classifier: the front ends' `TextClassifier`, with its model (a
    torch model, or an exported graph's `GraphModel`), tokenizer, device and padding.

    `clearpipe.Classifier` is one. Typed by shape rather than by class so that traces sit below
    the classifier that offers them (`Classifier.trace`) and never import it.
    """

    model: Any
    tokenizer: Any
    device: torch.device

    def collate(self, tokenized: Any, rows: Sequence[int]) -> Encoded: ...


GRAPH_ONLY = (
    "an exported graph returns its logits only: per-layer hidden states, attention weights and "
    "token attributions (gradients) need the torch model; trace the checkpoint the export was made from"
)
"""Why a trace of an exported folder shows no layers and no attributions."""


@cache
def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that every `Trace.to_dict()` satisfies."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def trace(clf: Traced, text: str, pair: str | None = None, attributions: bool = True) -> Trace:
    """Classify one text (or pair) through the classifier's own stages, recording each of them.

    Attributions are Integrated Gradients toward the predicted label (see `clearpipe.trace.attributions`).

    >>> t = trace(clearpipe.load("path/to/checkpoint"), "a good film")  # doctest: +SKIP
    >>> t.prediction.label  # doctest: +SKIP
    'positive'
    """
    start = time.perf_counter()
    if not isinstance(text, str) or not isinstance(pair, str | None):
        raise InputError(
            f"trace follows one text and an optional pair, both strings; got {type(text).__name__}"
            + ("" if pair is None else f" and {type(pair).__name__}")
        )
    item: TextInput = text if pair is None else (text, pair)
    stage_input = InputStage(text=text, pair=pair, time_ms=_ms(start))

    start = time.perf_counter()
    tokenized = clf.tokenize([item], keep_encodings=True)
    encoded = clf.collate(tokenized, [0])
    stage_tokenizer = _tokenizer_stage(tokenized, encoded, item, _ms(start))

    start = time.perf_counter()
    model, rechecked, checked = clf.model, None, None
    if clf.referee is not None or not isinstance(model, torch.nn.Module):
        # The engine's own loop decides, as for `clf(text)`, whether an int8 close call is
        # answered by the float referee (the model that answered is then recorded), and runs an
        # exported graph, which can show nothing but its logits.
        checked = loop.run_checked(tokenized, clf.runner, clf.budget, clf.referee)
        if len(checked.rechecked):
            rechecked = Recheck([float(x) for x in checked.fast[0]], clf.referee.margin, clf.referee.dtype)
            model = clf.referee.model or model
    recordable = isinstance(model, torch.nn.Module)
    if recordable:
        recorded = forward_recorded(model, encoded, clf.device)
        logits = recorded.logits
        stage_model = _model_stage(recorded, rechecked, _ms(start), is_pooled(model.config))
    else:
        logits = torch.from_numpy(checked.outputs)
        stage_model = _graph_stage(logits, rechecked, _ms(start))

    start = time.perf_counter()
    predictions = clf.postprocess(logits)
    stage_activation = ActivationStage(
        function=predictions.activation.value,
        reason=activation_reason(clf.model.config, predictions.activation),
        probabilities={
            label: float(p) for label, p in zip(predictions.labels, predictions.scores[0], strict=True)
        },
        time_ms=_ms(start),
        temperature=None if predictions.temperature is None else predictions.temperature.to_dict(),
    )

    start = time.perf_counter()
    best = predictions.to_output()[0]
    stage_prediction = PredictionStage(
        label=best["label"], label_id=int(predictions.best[0]), score=best["score"], time_ms=_ms(start)
    )

    attr = None
    tokens = stage_tokenizer.tokens
    if attributions and recordable:
        special = [t.special for t in tokens]
        baseline = baseline_token(clf.tokenizer)
        attr = integrated_gradients(model, encoded, clf.device, stage_prediction.label_id, special, baseline)
        tokens = [_with_attribution(t, a) for t, a in zip(tokens, attr.scores, strict=True)]
        attr = attr.with_words(tokens, stage_input.segments)
        stage_tokenizer = _replace_tokens(stage_tokenizer, tokens)
    return Trace(
        model_source=clf.source,
        labels=clf.labels,
        input=stage_input,
        tokenizer=stage_tokenizer,
        model=stage_model,
        activation=stage_activation,
        prediction=stage_prediction,
        attributions=attr,
        unavailable=None if recordable else [{"what": "layers and attributions", "why": GRAPH_ONLY}],
    )


def activation_reason(config: PretrainedConfig, activation: Activation) -> str:
    """Say why `activation` turns this checkpoint's logits into scores.

    >>> activation_reason(BertConfig(num_labels=3), Activation.SOFTMAX)  # doctest: +SKIP
    'single-label classification with 3 labels (problem_type unset): softmax makes the scores sum to 1'
    """
    default = default_activation(config)
    if activation is not default:
        return (
            f"chosen by the caller (function_to_apply={activation.value}); "
            f"the checkpoint's default would be {default.value}"
        )
    if config.problem_type == "regression":
        return "the checkpoint's problem_type is regression: the raw logit is the score"
    if config.problem_type == "multi_label_classification":
        return (
            "the checkpoint's problem_type is multi_label_classification: "
            "sigmoid scores each label on its own"
        )
    if config.num_labels == 1:
        return "the checkpoint has a single output (num_labels=1): sigmoid turns it into a probability"
    return (
        f"single-label classification with {config.num_labels} labels "
        f"(problem_type {config.problem_type or 'unset'}): softmax makes the scores sum to 1"
    )


# Stage builders ------------------------------------------------------------------------------


def _tokenizer_stage(
    tokenized: Tokenized, encoded: Encoded, item: TextInput, time_ms: float
) -> TokenizerStage:
    if tokenized.encodings is None or tokenized.encodings[0] is None:
        raise InputError("clearpipe trace needs a fast (Rust) tokenizer for character offsets")
    encoding: Encoding = tokenized.encodings[0]
    segments = [item] if isinstance(item, str) else list(item)
    types = None if tokenized.token_type_ids is None else tokenized.token_type_ids[0]
    tokens = [_token(encoding, i, token_id, types) for i, token_id in enumerate(tokenized.input_ids[0])]
    kept = [0] * len(segments)
    for token in tokens:
        if token.segment is not None and token.span is not None:
            kept[token.segment] = max(kept[token.segment], token.span[1])
    return TokenizerStage(
        tokens=tokens,
        shape=tuple(int(n) for n in encoded.input_ids.shape),
        has_token_type_ids=types is not None,
        truncated=tokenized.truncated[0],
        kept_chars=kept,
        time_ms=time_ms,
    )


def _token(encoding: Encoding, i: int, token_id: int, types: list[int] | None) -> Token:
    special = bool(encoding.special_tokens_mask[i])
    segment = None if special else encoding.sequence_ids[i]
    return Token(
        index=i,
        id=int(token_id),
        token=encoding.tokens[i],
        special=special,
        segment=segment,
        span=None if special else tuple(encoding.offsets[i]),
        word=None if special else encoding.word_ids[i],
        type_id=None if types is None else int(types[i]),
        attention_mask=int(encoding.attention_mask[i]),
    )


def _model_stage(recorded: Recorded, rechecked: Recheck | None, time_ms: float, mean: bool) -> ModelStage:
    hidden = recorded.hidden_states  # L+1 x (1, T, H)
    layers = []
    for i, states in enumerate(hidden[1:]):
        weights = None if recorded.attentions is None else recorded.attentions[i]
        layers.append(
            Layer(
                index=i + 1,
                shape=tuple(states.shape),
                mean_norm=_mean_norm(states),
                first_attends=None if weights is None else _first_attends(weights),
            )
        )
    if mean:  # a few-shot (SetFit) model: the unit-length mean of the last layer (`clearpipe.pooled`)
        pooled_kind, pooled_shape = "mean_pooled", tuple(hidden[-1][:, 0].shape)
    elif recorded.pooled is not None:
        pooled_kind, pooled_shape = "pooler", tuple(recorded.pooled.shape)
    else:
        pooled_kind, pooled_shape = "first_token", tuple(hidden[-1][:, 0].shape)
    return ModelStage(
        embedding_shape=tuple(hidden[0].shape),
        embedding_mean_norm=_mean_norm(hidden[0]),
        layers=layers,
        pooled_kind=pooled_kind,
        pooled_shape=pooled_shape,
        logits=[float(x) for x in recorded.logits[0]],
        logits_shape=tuple(recorded.logits.shape),
        attention="eager" if recorded.attentions is not None else "unavailable",
        time_ms=time_ms,
        recheck=rechecked,
    )


def _graph_stage(logits: torch.Tensor, rechecked: Recheck | None, time_ms: float) -> ModelStage:
    return ModelStage(
        embedding_shape=None,
        embedding_mean_norm=None,
        layers=[],
        pooled_kind=None,
        pooled_shape=None,
        logits=[float(x) for x in logits[0]],
        logits_shape=tuple(logits.shape),
        attention="unavailable",
        time_ms=time_ms,
        recheck=rechecked,
        unavailable=GRAPH_ONLY,
    )


def _mean_norm(states: torch.Tensor) -> float:
    return float(states[0].norm(dim=-1).mean()) if states.shape[1] else 0.0  # (T, H) -> (T,) -> ()


def _first_attends(weights: torch.Tensor) -> list[tuple[int, float]]:
    row = weights[0].mean(dim=0)[0]  # (heads, T, T) -> (T, T) -> first query (T,)
    top = torch.topk(row, k=min(TOP_ATTENDED, row.shape[0]))
    return [(int(i), float(w)) for w, i in zip(top.values, top.indices, strict=True)]


def _with_attribution(token: Token, score: float) -> Token:
    return Token(**{**token.__dict__, "attribution": float(score)})


def _replace_tokens(stage: TokenizerStage, tokens: list[Token]) -> TokenizerStage:
    return TokenizerStage(**{**stage.__dict__, "tokens": tokens})


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


# JSON form -----------------------------------------------------------------------------------


def _stage(name: str, took: str, gave: str, shape: Shape, time_ms: float, **details: Any) -> dict[str, Any]:
    return {"name": name, "input": took, "output": gave, "shape": list(shape), "time_ms": time_ms, **details}


def _input_dict(stage: InputStage) -> dict[str, Any]:
    chars = " + ".join(f"{n} characters" for n in stage.shape)
    return _stage(
        "input",
        "text" if stage.pair is None else "text and text_pair",
        chars,
        stage.shape,
        stage.time_ms,
        text=stage.text,
        text_pair=stage.pair,
        chars=list(stage.shape),
    )


def _tokenizer_dict(stage: TokenizerStage) -> dict[str, Any]:
    tensors = "input_ids, attention_mask" + (", token_type_ids" if stage.has_token_type_ids else "")
    return _stage(
        "tokenizer",
        f"{len(stage.kept_chars)} segment(s) of text",
        f"{tensors}: int64 {tuple(stage.shape)}",
        stage.shape,
        stage.time_ms,
        tokens=[_token_dict(t) for t in stage.tokens],
        has_token_type_ids=stage.has_token_type_ids,
        truncated=stage.truncated,
        kept_chars=list(stage.kept_chars),
    )


def _token_dict(token: Token) -> dict[str, Any]:
    return {
        "index": token.index,
        "id": token.id,
        "token": token.token,
        "special": token.special,
        "segment": token.segment,
        "span": None if token.span is None else list(token.span),
        "word": token.word,
        "type_id": token.type_id,
        "attention_mask": token.attention_mask,
        "attribution": token.attribution,
    }


def _model_dict(stage: ModelStage, tokens: list[Token]) -> dict[str, Any]:
    return _stage(
        "model",
        f"input_ids {tuple((1, len(tokens)))}",
        f"logits {stage.logits_shape}",
        stage.logits_shape,
        stage.time_ms,
        embeddings=None
        if stage.embedding_shape is None
        else {"shape": list(stage.embedding_shape), "mean_norm": stage.embedding_mean_norm},
        layers=[
            {
                "index": layer.index,
                "shape": list(layer.shape),
                "mean_norm": layer.mean_norm,
                "first_attends": None
                if layer.first_attends is None
                else [{"index": i, "token": tokens[i].token, "weight": w} for i, w in layer.first_attends],
            }
            for layer in stage.layers
        ],
        pooled=None
        if stage.pooled_shape is None
        else {"kind": stage.pooled_kind, "shape": list(stage.pooled_shape)},
        unavailable=stage.unavailable,
        logits=list(stage.logits),
        attention=stage.attention,
        recheck=None
        if stage.recheck is None
        else {
            "int8_logits": stage.recheck.fast_logits,
            "margin": stage.recheck.margin,
            "dtype": stage.recheck.dtype,
        },
    )


def _activation_dict(stage: ActivationStage, model: ModelStage) -> dict[str, Any]:
    scaled = "" if stage.temperature is None else "temperature-scaled "
    return _stage(
        "activation",
        f"logits {model.logits_shape}",
        f"{scaled}{stage.function} scores {model.logits_shape}",
        model.logits_shape,
        stage.time_ms,
        function=stage.function,
        reason=stage.reason,
        probabilities=dict(stage.probabilities),
        temperature=None if stage.temperature is None else dict(stage.temperature),
    )


def temperature_text(temperature: dict[str, str | float] | None) -> str:
    """How the logits were scaled before the activation, in words, for the terminal and HTML views.

    >>> temperature_text({"method": "temperature", "temperature": 2.0})
    'logits divided by the saved temperature 2.0000 (clearpipe_calibration in config.json)'
    """
    if temperature is None:
        return "raw logits (no saved temperature, or loaded with calibrated=False)"
    t = float(temperature["temperature"])
    if "power" in temperature:
        how = f"logits divided by the saved margin temperature {t:.4f} x margin^(1 - {float(temperature['power']):.4f})"
    else:
        how = f"logits divided by the saved temperature {t:.4f}"
    return f"{how} (clearpipe_calibration in config.json)"


def _prediction_dict(stage: PredictionStage, activation: ActivationStage) -> dict[str, Any]:
    return _stage(
        "prediction",
        f"{len(activation.probabilities)} scores",
        "the best label and its score",
        (1,),
        stage.time_ms,
        label=stage.label,
        label_id=stage.label_id,
        score=stage.score,
    )
