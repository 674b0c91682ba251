"""`TokenClassifier`: a `*ForTokenClassification` checkpoint (or a folder `clearpipe export` wrote
from one) with its three stages, and `load_token_classifier` to make one (`clearpipe.load` and
`clearpipe.pipeline("ner")` call it).

Stage 1 is `windows` (whole inputs, cut into overlapping windows, never truncated), stage 2 the
engine's loop over a `engine.run.TokenRunner` (token-budget batches, padded, every token computed)
or, for an export, a `engine.graphs.TokenGraphRunner`; stage 3 `aggregation` (softmax per token,
tokens -> words -> entities). Stages 2-3 and the call contract are `tagger.Tagger`'s.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from clearpipe.engine import allocator, attention, batching, loop, precision, prepacked
from clearpipe.engine.exported import EXPORT_INFO, check_dtype
from clearpipe.engine.graphs import TokenGraphRunner
from clearpipe.engine.onnx_runtime import is_onnx_folder, load_onnx, load_tokenizer
from clearpipe.engine.openvino_runtime import is_openvino_folder, load_openvino
from clearpipe.engine.run import TokenRunner
from clearpipe.entities import aggregation, windows
from clearpipe.entities.aggregation import Aggregation
from clearpipe.entities.tagger import (  # noqa: F401  (TokenScores, EntityDict: re-exported)
    EntityDict,
    Tagger,
    TokenScores,
    TokenSettings,
    check_ignore,
)
from clearpipe.entities.windows import TokenWindows
from clearpipe.errors import InputError
from clearpipe.loading import (
    Checkpoint,
    load_checkpoint,
    model_max_length,
    resolve_device,
    uses_token_type_ids,
)
from clearpipe.postprocess import saved_temperature

if TYPE_CHECKING:
    from clearpipe.trace.tokens import TokenTrace


class TokenClassifier(Tagger):
    """A token classifier (named entities): call it on a text or a list of texts.

    >>> ner = clearpipe.load("path/to/ner-model")  # doctest: +SKIP
    >>> ner("Ada Lovelace was born in London.")  # doctest: +SKIP
    [{'entity_group': 'PER', 'score': 0.99, 'word': 'Ada Lovelace', 'start': 0, 'end': 12}, ...]
    """

    def __init__(self, checkpoint: Checkpoint, settings: TokenSettings, runner: loop.Runner | None = None):
        self.model = checkpoint.model
        self.tokenizer = checkpoint.tokenizer
        self.source = checkpoint.source
        self.settings = settings
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.runner: loop.Runner = runner or TokenRunner(
            self.model, self.model.device, pad_id, self.tokenizer.padding_side
        )
        prefix = getattr(getattr(self.tokenizer, "_tokenizer", None), "model", None)
        self.aggregation = Aggregation(
            labels=settings.labels,
            word_aware=bool(getattr(prefix, "continuing_subword_prefix", None)),
            unk_id=self.tokenizer.unk_token_id,
            decode=aggregation.cached(self.tokenizer.convert_tokens_to_string),
        )

    @property
    def device(self) -> torch.device:
        return self.model.device

    def tokenize(
        self, inputs: Sequence[str] | Sequence[Sequence[str]], is_split_into_words: bool = False
    ) -> TokenWindows:
        """Stage 1: checked inputs (texts, or word lists) -> every input's tokens and its windows."""
        s = self.settings
        return windows.windows(
            self.tokenizer, inputs, is_split_into_words, s.use_token_type_ids, s.max_length, s.stride
        )

    def trace(self, text: str, pair: str | None = None, attributions: bool = True) -> TokenTrace:
        """One text through the stages, each recorded and timed: tokens with their top labels,
        the words and entities they became (`clearpipe.trace.tokens`). Pairs and attributions
        are for sequence classifiers; the trace says attributions are unavailable.

        >>> ner.trace("Ada met Alan.").entities[0]["entity_group"]  # doctest: +SKIP
        'PER'
        """
        from clearpipe.trace.tokens import trace_tokens

        if pair is not None:
            raise InputError("pair: a token-classification (NER) model traces one text, without a pair")
        return trace_tokens(self, text)

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"TokenClassifier(source={self.source!r}, labels={list(s.labels)}, max_length={s.max_length}, "
            f"stride={s.stride}, dtype={s.dtype}, aggregation_strategy={s.aggregation_strategy!r})"
        )


def load_token_classifier(
    source: str | os.PathLike[str],
    *,
    max_length: int | None = None,
    batch_size: int | None = None,
    device: str = "auto",
    dtype: str = "auto",
    stride: int | None = None,
    max_tokens: int | None = None,
    threads: int | None = None,
    trust_remote_code: bool = False,
    labels: Sequence[str] | None = None,
    aggregation_strategy: str = aggregation.DEFAULT_STRATEGY,
    ignore_labels: Sequence[str] = ("O",),
    calibrated: bool = True,
) -> TokenClassifier:
    """Load a token-classification checkpoint folder (or hub id, resolved by
    `clearpipe.loading.resolve_source`) as a `TokenClassifier`.

    Texts longer than `max_length` tokens (default: the model's limit) run in windows overlapping
    by `stride` tokens (default a quarter window). `dtype` is "auto", "float32", "bfloat16" or
    "float16"; int8 is refused (its close-call referee judges one label per row). A temperature
    saved in config.json (named-entity training fits one) softens or sharpens every token's
    scores unless `calibrated=False`.

    >>> ner = load_token_classifier("path/to/ner-model", dtype="float32")  # doctest: +SKIP
    """
    strategy = aggregation.check_strategy(aggregation_strategy)
    if batch_size is not None and batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise InputError(f"max_tokens must be at least 1, got {max_tokens}")
    if threads is not None:
        if threads < 1:
            raise InputError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    torch_device = resolve_device(device)
    exported = _open_export(str(source), torch_device, threads, dtype)
    if exported is not None:
        checkpoint, resolved, runner = exported
    else:
        checkpoint, resolved, runner = _open_checkpoint(str(source), torch_device, dtype, trust_remote_code)
    length = _max_length(max_length, checkpoint)
    settings = TokenSettings(
        max_length=length,
        stride=length // 4 if stride is None else _check_stride(stride),
        labels=tuple(_labels(checkpoint, labels)),
        use_token_type_ids=uses_token_type_ids(checkpoint.model, checkpoint.tokenizer),
        dtype=resolved,
        batch_size=batch_size,
        max_tokens=batching.default_max_tokens(torch_device) if max_tokens is None else max_tokens,
        aggregation_strategy=strategy,
        ignore_labels=check_ignore(ignore_labels),
        temperature=saved_temperature(checkpoint.model.config) if calibrated else None,
    )
    return TokenClassifier(checkpoint, settings, runner)


def _open_checkpoint(
    source: str, device: torch.device, dtype: str, trust_remote_code: bool
) -> tuple[Checkpoint, str, None]:
    """A torch checkpoint in the resolved dtype, on its fast CPU paths (the runner is the default)."""
    resolved = precision.resolve_dtype(dtype, device)
    if resolved == "int8":
        raise InputError(
            "dtype int8 is not available for token classification; use auto, float32 or bfloat16 "
            "(or clearpipe export --quantize int8 and load the export)"
        )
    if device.type == "cpu":
        allocator.keep_freed_memory()
    checkpoint = load_checkpoint(source, device, precision.torch_dtype(resolved), trust_remote_code)
    attention.use_cpu_attention(checkpoint.model)  # bf16/fp16 attention on the CPU
    prepacked.prepack_model(checkpoint.model)
    return checkpoint, resolved, None


def _open_export(
    source: str, device: torch.device, threads: int | None, dtype: str
) -> tuple[Checkpoint, str, TokenGraphRunner] | None:
    """A folder written by `clearpipe export` from a token classifier, opened by ONNX Runtime or
    OpenVINO with its per-token graph runner; None for anything else."""
    if is_onnx_folder(source):
        check_dtype(source, "onnx", dtype)
        model, kind = load_onnx(source, device, threads), "onnx"
    elif is_openvino_folder(source):
        check_dtype(source, "openvino", dtype)
        model, kind = load_openvino(source, device, threads, dtype), "openvino"
    else:
        return None
    tokenizer = load_tokenizer(source)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    runner = TokenGraphRunner(model.graph, int(model.config.num_labels), pad_id, tokenizer.padding_side)
    return Checkpoint(model=model, tokenizer=tokenizer, source=source), kind, runner


def _check_stride(stride: int) -> int:
    if stride < 0:
        raise InputError(f"stride must be 0 or more tokens, got {stride}")
    return stride


def _max_length(max_length: int | None, checkpoint: Checkpoint) -> int:
    limit = model_max_length(checkpoint.model.config, checkpoint.tokenizer)
    traced = _record(checkpoint.source).get("max_length")  # an export: the length its graph was traced for
    limit = min(limit, int(traced)) if traced else limit
    if max_length is None:
        return limit
    if max_length < 4 or max_length > limit:
        raise InputError(
            f"max_length must be between 4 and the model's limit of {limit} tokens, got {max_length}"
        )
    return max_length


def _labels(checkpoint: Checkpoint, labels: Sequence[str] | None) -> list[str]:
    config = checkpoint.model.config
    if labels is None:
        return [str(config.id2label[i]) for i in range(config.num_labels)]
    if len(labels) != config.num_labels:
        raise InputError(f"labels has {len(labels)} names but the model has {config.num_labels} outputs")
    return [str(label) for label in labels]


def _record(source: str) -> dict:
    info = Path(source) / EXPORT_INFO
    return json.loads(info.read_text(encoding="utf-8")) if info.is_file() else {}
