"""`Classifier`: a loaded checkpoint with its three stages, and `load` to make one.

`Classifier.__call__` composes `preprocess` (tokenizer), `forward` (model) and `postprocess`
(activation and labels) through the batching engine; nothing else re-implements a stage.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypedDict

import numpy as np
import torch

from clearpipe import longtext
from clearpipe.contract import answer
from clearpipe.engine import (
    allocator,
    attention,
    batching,
    collector,
    first_token,
    loop,
    precision,
    prepacked,
)
from clearpipe.engine import run as engine
from clearpipe.engine.exported import check_dtype
from clearpipe.engine.graphs import GraphRunner, export_referee
from clearpipe.engine.onnx_runtime import is_onnx_folder, load_onnx, load_tokenizer
from clearpipe.engine.openvino_runtime import is_openvino_folder, load_openvino
from clearpipe.engine.samples import builtin_sample
from clearpipe.entities import TokenClassifier, load_token_classifier
from clearpipe.errors import InputError
from clearpipe.forward import forward as forward_stage
from clearpipe.inputs import TextInput, normalize_inputs
from clearpipe.loading import (
    Checkpoint,
    is_token_classifier,
    load_checkpoint,
    load_config,
    model_max_length,
    resolve_device,
    resolve_source,
    uses_token_type_ids,
)
from clearpipe.postprocess import BEST, Activation, Output, Predictions, Scoring, ScoringView, TopK
from clearpipe.preprocess import Encoded, Tokenized, collate, tokenize

if TYPE_CHECKING:
    from clearpipe.trace.record import Trace


class LoadOptions(TypedDict, total=False):
    """Options of `load` and `pipeline`, typed so that editors can check them."""

    max_length: int | None
    batch_size: int | None
    device: str
    labels: Sequence[str] | None
    function_to_apply: str | None
    trust_remote_code: bool
    dtype: str
    long_text: str
    stride: int | None
    aggregate: str
    max_tokens: int | None
    threads: int | None
    recheck: bool
    calibrated: bool
    min_score: float | None


@dataclass(frozen=True)
class Settings(ScoringView):
    """Resolved per-classifier settings; `scoring` is stage 3's (activation, saved temperature,
    a multi-label model's thresholds, the default `min_score`), read through the same names."""

    max_length: int
    batch_size: int | None
    scoring: Scoring
    use_token_type_ids: bool
    dtype: str = "float32"  # resolved: float32, bfloat16, float16, int8, "onnx" or "openvino"
    long_text: str = "truncate"
    stride: int = 0
    aggregate: str = "mean"
    max_tokens: int | None = None
    long_text_modes: ClassVar[tuple[str, ...]] = longtext.LONG_TEXT_MODES  # any per call

    @property
    def labels(self) -> list[str]:
        return self.scoring.labels


class Classifier:
    """A text classifier: call it on a text, a pair or a list of them.

    >>> clf = clearpipe.load("path/to/checkpoint")  # doctest: +SKIP
    >>> clf("I love this movie!")  # doctest: +SKIP
    {'label': 'positive', 'score': 0.998}
    """

    def __init__(self, checkpoint: Checkpoint, settings: Settings) -> None:
        self.model = checkpoint.model
        self.tokenizer = checkpoint.tokenizer
        self.source = checkpoint.source
        self.settings = settings
        self.device = self.model.device
        # How the engine runs this model (a torch model padded or packed, or an exported graph),
        # and the float model that re-runs an int8 model's close calls (see
        # clearpipe.engine.recheck): set by `load`, None for every other dtype.
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.runner: engine.Runner | GraphRunner = engine.runner_of(
            self.model, self.device, pad_id, self.tokenizer.padding_side
        )
        self.referee: loop.Referee | None = None

    @property
    def packs(self) -> bool:
        """True when this model runs padding-free batches (see `clearpipe.engine.packing`)."""
        return getattr(self.runner, "pack_offset", None) is not None

    @property
    def budget(self) -> loop.Budget:
        """How the engine cuts rows into batches for this classifier (see `clearpipe.engine.loop`)."""
        return loop.Budget(self.settings.max_tokens, self.settings.batch_size)

    @property
    def labels(self) -> list[str]:
        return list(self.settings.labels)

    @property
    def max_length(self) -> int:
        return self.settings.max_length

    @property
    def long_text(self) -> str:
        """How long inputs are handled: "truncate" (cut at max_length) or "chunk" (windows)."""
        return self.settings.long_text

    @property
    def thresholds(self) -> tuple[float, ...] | None:
        """A multi-label model's per-label thresholds; None for a single-label model."""
        return self.settings.thresholds

    # Stage 1 ---------------------------------------------------------------------------------
    def tokenize(self, items: Sequence[TextInput], keep_encodings: bool = False) -> Tokenized:
        """Tokenize normalized inputs without padding (see `clearpipe.preprocess.tokenize`)."""
        settings = self.settings
        return tokenize(
            self.tokenizer, items, settings.max_length, settings.use_token_type_ids, keep_encodings
        )

    def collate(self, tokenized: Tokenized, rows: Sequence[int]) -> Encoded:
        """Pad the given rows of `tokenized` into one batch of tensors, as the runner pads them."""
        return collate(tokenized, rows, self.runner.pad_id, self.runner.padding_side)

    def preprocess(self, inputs: object) -> Encoded:
        """Stage 1: texts -> one padded batch (input_ids, attention_mask, ...), in input order.

        >>> clf.preprocess(["good", "bad"]).input_ids.shape  # doctest: +SKIP
        torch.Size([2, 3])
        """
        tokenized = self.tokenize(normalize_inputs(inputs).items)
        return self.collate(tokenized, range(len(tokenized)))

    # Stage 2 ---------------------------------------------------------------------------------
    def forward(self, encoded: Encoded) -> torch.Tensor:
        """Stage 2: one padded batch -> float32 logits (batch, num_labels) on the CPU.

        >>> clf.forward(clf.preprocess(["good", "bad"])).shape  # doctest: +SKIP
        torch.Size([2, 2])
        """
        if isinstance(self.runner, engine.Runner):
            return self.runner.forward(encoded)
        return forward_stage(self.model, encoded, self.device)  # an exported graph's model

    # Stage 3 ---------------------------------------------------------------------------------
    def postprocess(
        self,
        logits: torch.Tensor | np.ndarray,
        function_to_apply: str | Activation | None = None,
        calibrated: bool = True,
    ) -> Predictions:
        """Stage 3: logits -> scores per label (softmax, sigmoid or none), softmax logits divided
        by the saved temperature unless `calibrated=False` (or loaded so).

        >>> clf.postprocess(logits, calibrated=False).temperature is None  # doctest: +SKIP
        True
        """
        array = logits.numpy() if isinstance(logits, torch.Tensor) else np.asarray(logits)
        return self.settings.scoring.postprocess(array, function_to_apply, calibrated)

    # All three -------------------------------------------------------------------------------
    def predict(self, inputs: object, function_to_apply: str | Activation | None = None) -> Predictions:
        """Scores for every input, in input order, batched by the engine.

        >>> clf.predict(["good", "bad"]).scores.shape  # doctest: +SKIP
        (2, 2)
        """
        return self.predict_items(normalize_inputs(inputs).items, function_to_apply)

    def predict_items(
        self, items: Sequence[TextInput], function_to_apply: str | Activation | None = None
    ) -> Predictions:
        """Like `predict`, for inputs already normalized by `clearpipe.inputs.normalize_inputs`."""
        activation = self.settings.scoring.activation_for(function_to_apply)
        if self.settings.long_text == "chunk":
            windows = self.tokenize_windows(items)
            return self.combine_windows(self.postprocess(self.logits(windows.tokenized), activation), windows)
        return self.postprocess(self.logits(self.tokenize(items)), activation)

    def logits(self, tokenized: Tokenized) -> np.ndarray:
        """Stages 1b-2 for many rows: logits (rows, num_labels) in input order, via the engine
        (`clearpipe.engine.loop`: batching, packing, and an int8 model's close calls re-run).

        >>> clf.logits(clf.tokenize(["good", "bad"])).shape  # doctest: +SKIP
        (2, 2)
        """
        return loop.run(tokenized, self.runner, self.budget, self.referee)

    def close_calls(self, logits: np.ndarray) -> np.ndarray:
        """Rows of this classifier's `logits` that its referee re-runs (none without a referee).

        >>> clf.close_calls(np.array([[0.1, 0.2], [0.0, 5.0]]))  # doctest: +SKIP
        array([0])
        """
        if self.referee is None:
            return np.empty(0, dtype=np.int64)
        return self.referee.close_calls(logits)

    def tokenize_windows(self, items: Sequence[TextInput]) -> longtext.Windows:
        """Tokenize for `long_text="chunk"`: every `max_length` window of every input, as rows."""
        s = self.settings
        return longtext.tokenize_windows(self.tokenizer, items, s.max_length, s.stride, s.use_token_type_ids)

    def combine_windows(self, per_window: Predictions, windows: longtext.Windows) -> Predictions:
        """Aggregate per-window scores into one row per input (mean or max, see `load`)."""
        scores = longtext.aggregate_windows(per_window.scores, windows, self.settings.aggregate)
        return dataclasses.replace(per_window, scores=scores, windows=windows.counts)

    def warmup(self) -> None:
        """Run two small batches so that kernel selection and allocation happen before real work."""
        self.predict_items(["warm up " * 4, "warm up " * 30])

    def __call__(
        self,
        inputs: object,
        top_k: TopK = BEST,
        function_to_apply: str | Activation | None = None,
        min_score: float | None = None,
    ) -> Output | list[Output]:
        """Classify a text, a pair, or a list of them; see `clearpipe.postprocess` for the output.

        `min_score` (default: the one given to `load`) adds `"decided"` to every result.

        >>> clf(["great", "awful"], top_k=None)  # doctest: +SKIP
        [[{'label': 'positive', 'score': 0.99}, {'label': 'negative', 'score': 0.01}], [...]]
        """
        return answer(self, inputs, top_k, function_to_apply, min_score)

    def check_min_score(
        self, min_score: float | None, function_to_apply: str | Activation | None = None
    ) -> float | None:
        """The `min_score` a call uses: its own, else the classifier's; checked against the scores
        it would apply to (softmax only).

        >>> clf.check_min_score(0.9)  # doctest: +SKIP
        0.9
        """
        return self.settings.scoring.check_min_score(min_score, function_to_apply)

    # Trace -----------------------------------------------------------------------------------
    def trace(self, text: str, pair: str | None = None, attributions: bool = True) -> Trace:
        """Classify one text (or pair), recording every stage; see `clearpipe.trace.record`.

        >>> clf.trace("a good film").prediction.label  # doctest: +SKIP
        'positive'
        """
        from clearpipe.trace.record import trace

        return trace(self, text, pair, attributions)

    def __repr__(self) -> str:
        referee = self.referee
        rechecks = "" if referee is None else f", recheck={referee.dtype} under margin {referee.margin:.3f}"
        if self.settings.temperature is not None:
            rechecks += f", {self.settings.temperature}"
        return (
            f"Classifier(source={self.source!r}, labels={self.settings.labels}, "
            f"max_length={self.settings.max_length}, device={self.device}, dtype={self.settings.dtype}"
            f"{rechecks})"
        )


@collector.paused()  # the whole load, the int8 referee's calibration included: see clearpipe.engine.collector
def load(
    model: str | os.PathLike[str] | None = None,
    *,
    max_length: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    labels: Sequence[str] | None = None,
    function_to_apply: str | None = None,
    trust_remote_code: bool = False,
    dtype: str = "auto",
    long_text: str = "truncate",
    stride: int | None = None,
    aggregate: str = "mean",
    max_tokens: int | None = None,
    threads: int | None = None,
    recheck: bool = True,
    calibrated: bool = True,
    min_score: float | None = None,
) -> Classifier | TokenClassifier:
    """Load a sequence-classification checkpoint (folder or hub id) as a `Classifier`; a
    `*ForTokenClassification` one (named entities) as a `clearpipe.entities.TokenClassifier`.

    `model=None` loads clearpipe's embedded default sentiment model. `labels` renames the
    checkpoint's labels (e.g. generic `LABEL_0`, `LABEL_1`), in label-id order. A folder written
    by `clearpipe export --format onnx` runs through ONNX Runtime, one by `--format openvino`
    through OpenVINO.

    Speed: `dtype` is "auto" (bf16 where the hardware has it, else fp32), "float32", "bfloat16",
    "float16" or "int8" (int8 linear layers, CPU; with `recheck`, the default, close calls are
    re-run by a float copy of the model, see `clearpipe.engine.recheck`, which `recheck=False` saves the
    memory of); batches hold up to `max_tokens` padded tokens
    (default: `engine.batching.DEFAULT_MAX_TOKENS` for the device) and `batch_size` rows (default: no cap); `threads` sets the intra-op thread count (default: physical cores).
    Long texts: `long_text="truncate"` or `"chunk"` (windows overlapping by `stride` tokens,
    probabilities combined by `aggregate`, "mean" or "max"); see docs/ENGINE.md.
    Trust: a temperature saved in the checkpoint (`clearpipe calibrate`) divides softmax logits
    unless `calibrated=False`; `min_score` marks results below it `"decided": false`; a multi-label
    model's saved thresholds say which labels apply (see `clearpipe.postprocess`).

    >>> clf = clearpipe.load("path/to/checkpoint", max_length=128, dtype="float32")  # doctest: +SKIP
    """
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise InputError(f"max_tokens must be at least 1, got {max_tokens}")
    longtext.check_long_text(long_text, aggregate)
    if threads is not None:
        if threads < 1:
            raise InputError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    source = resolve_source(model)
    if is_token_classifier(load_config(source, trust_remote_code)):
        if function_to_apply is not None or min_score is not None:
            raise InputError(
                "function_to_apply and min_score apply to sequence classifiers, not to token classifiers"
            )
        return load_token_classifier(
            source,
            max_length=max_length,
            batch_size=batch_size,
            device=device,
            dtype=dtype,
            stride=stride,
            max_tokens=max_tokens,
            threads=threads,
            trust_remote_code=trust_remote_code,
            labels=labels,
            calibrated=calibrated,
        )
    torch_device = resolve_device(device)
    if torch_device.type == "cpu":
        allocator.keep_freed_memory()  # see clearpipe.engine.allocator: page faults cost up to a third
    checkpoint, resolved, float_model = _load_model(
        source, torch_device, dtype, trust_remote_code, threads, recheck
    )
    max_len = _check_max_length(max_length, checkpoint)
    config = checkpoint.model.config
    saved_names = [str(config.id2label[i]) for i in range(config.num_labels)]
    scoring = Scoring.of(
        config, _labels(checkpoint, labels), saved_names, function_to_apply, calibrated, min_score
    )
    settings = Settings(
        max_length=max_len,
        batch_size=batch_size,
        scoring=scoring,
        use_token_type_ids=uses_token_type_ids(checkpoint.model, checkpoint.tokenizer),
        dtype=resolved,
        long_text=long_text,
        stride=max_len // 8 if stride is None else _check_stride(stride),
        aggregate=aggregate,
        max_tokens=batching.default_max_tokens(torch_device) if max_tokens is None else max_tokens,
    )
    clf = Classifier(checkpoint, settings)
    sigmoid = scoring.activation is Activation.SIGMOID
    if resolved == "openvino" and recheck and isinstance(clf.runner, GraphRunner):
        # an int8 export's float graph, with the margin `clearpipe export` measured
        clf.referee = export_referee(
            Path(source), clf.runner, threads or torch.get_num_threads(), dtype, sigmoid
        )
    elif float_model is not None:  # the margin of int8's close calls, from both models on the built-in sample
        sample = clf.tokenize(builtin_sample(clf.labels)[1])
        clf.referee = engine.referee(float_model, clf.runner, clf.budget, sample, sigmoid)
    return clf


def _load_model(
    source: str,
    device: torch.device,
    dtype: str,
    trust_remote_code: bool,
    threads: int | None,
    recheck: bool,
) -> tuple[Checkpoint, str, torch.nn.Module | None]:
    """Load the checkpoint in the resolved dtype; exported folders go to ONNX Runtime or OpenVINO.

    For a torch int8 model with `recheck`, also returns the float model (in the "auto" dtype) that re-runs
    close calls.
    """
    if is_onnx_folder(source):
        check_dtype(source, "onnx", dtype)
        model = load_onnx(source, device, threads)
        return Checkpoint(model=model, tokenizer=load_tokenizer(source), source=source), "onnx", None
    if is_openvino_folder(source):  # an int8 export's float graph is opened by `load`
        check_dtype(source, "openvino", dtype)
        model = load_openvino(source, device, threads, dtype)
        return Checkpoint(model=model, tokenizer=load_tokenizer(source), source=source), "openvino", None
    resolved = precision.resolve_dtype(dtype, device)
    checkpoint = load_checkpoint(
        source, device, dtype=precision.torch_dtype(resolved), trust_remote_code=trust_remote_code
    )
    float_model = None
    if resolved == "int8":
        if recheck:  # copied before quantizing, which swaps the linear layers in place
            float_dtype = precision.torch_dtype(precision.resolve_dtype("auto", device))
            float_model = _copy_in(checkpoint.model, float_dtype)
            _use_fast_paths(float_model)
        checkpoint = Checkpoint(precision.quantize_int8(checkpoint.model), checkpoint.tokenizer, source)
    _use_fast_paths(checkpoint.model)
    return checkpoint, resolved, float_model


def _use_fast_paths(model: torch.nn.Module) -> None:
    """Switch a loaded model to clearpipe's faster paths where they apply: on the CPU, attention
    for bf16/fp16 (see `clearpipe.engine.attention`) and prepacked weights for fp32/bf16 linears
    (`clearpipe.engine.prepacked`); on any device, a last layer that computes only the first token
    for the classifiers whose head reads nothing else (`clearpipe.engine.first_token`)."""
    attention.use_cpu_attention(model)
    prepacked.prepack_model(model)
    first_token.install(model)


def _copy_in(model: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Module:
    """A copy of `model` with its parameters in `dtype`, never holding a float32 copy on the way
    (which the allocator would keep, see `clearpipe.engine.allocator`). Tied parameters stay tied."""
    memo: dict[int, object] = {
        id(p): torch.nn.Parameter(p.detach().to(dtype), requires_grad=p.requires_grad)
        for p in model.parameters()
    }
    return copy.deepcopy(model, memo)


def _check_stride(stride: int) -> int:
    if stride < 0:
        raise InputError(f"stride must be 0 or more tokens, got {stride}")
    return stride


def _check_max_length(max_length: int | None, checkpoint: Checkpoint) -> int:
    limit = model_max_length(checkpoint.model.config, checkpoint.tokenizer)
    if max_length is None:
        return limit
    if max_length < 2 or max_length > limit:
        raise InputError(
            f"max_length must be between 2 and the model's limit of {limit} tokens, got {max_length}"
        )
    return max_length


def _labels(checkpoint: Checkpoint, labels: Sequence[str] | None) -> list[str]:
    config = checkpoint.model.config
    if labels is None:
        return [str(config.id2label[i]) for i in range(config.num_labels)]
    labels = [str(label) for label in labels]
    if len(labels) != config.num_labels:
        raise InputError(f"labels has {len(labels)} names but the model has {config.num_labels} outputs")
    return labels
