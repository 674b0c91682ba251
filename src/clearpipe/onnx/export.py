"""`clearpipe export`: write a checkpoint as an ONNX Runtime or OpenVINO model, refused if it lost accuracy.

The export is written to `OUTPUT.partial`, loaded back through `clearpipe.load`, and compared
with the fp32 PyTorch model on validation texts (the user's file or a built-in sample of the
model's kind). Only an export that keeps at least `threshold` label agreement is moved to
`OUTPUT`; a worse one is deleted and the command fails, naming the agreement it reached.
`--format openvino` converts the same ONNX graph to OpenVINO IR (`clearpipe.onnx.to_openvino`).

A token-classification (NER) checkpoint exports its per-token logits graph, (batch, tokens,
labels); its guard counts tokens whose best label is fp32's (`agreement.compare_tokens`, with the
share of texts whose entities are identical beside it). Static int8 OpenVINO is refused for it: the
close-call referee judges one label per row.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from clearpipe.engine import first_token, linears
from clearpipe.engine.exported import OPENVINO_FILE
from clearpipe.engine.onnx_runtime import EXPORT_INFO, ONNX_FILE
from clearpipe.engine.sessions import OPENVINO_DYNAMIC_GROUPS
from clearpipe.entities import TokenClassifier
from clearpipe.errors import InputError
from clearpipe.forward import FIRST_TOKEN_KWARG
from clearpipe.onnx import to_openvino
from clearpipe.onnx.agreement import (
    DEFAULT_THRESHOLD,
    AccuracyError,
    Agreement,
    compare,
    compare_tokens,
    require,
)
from clearpipe.preprocess import Encoded, collate

FORMATS = ("onnx", "openvino")
QUANTIZATIONS = ("int8", "int8-dynamic")  # int8-dynamic: OpenVINO only (ONNX Runtime's int8 is dynamic)
OPSET = 18


@dataclass(frozen=True)
class ExportReport:
    """What was written and how well it agrees with the fp32 model."""

    output: str
    format: str
    quantize: str | None
    check: str
    agreement: Agreement
    threshold: float
    max_length: int  # the longest input the graph was traced for (`clearpipe.lite` reads it)
    referee_margin: float | None = None  # int8 OpenVINO: the gap under which a row re-runs in float
    activation_group: int | None = None  # int8-dynamic: values per run-time activation scale


class _LogitsOnly(torch.nn.Module):
    """The classifier as a function of its input tensors returning logits, the ONNX graph's shape."""

    def __init__(self, model: torch.nn.Module, use_token_type_ids: bool) -> None:
        super().__init__()
        self.model = model
        self.use_token_type_ids = use_token_type_ids

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        extra = {"token_type_ids": token_type_ids} if self.use_token_type_ids else {}
        if first_token.installed(self.model):  # the graph computes what the head reads, as forward does
            extra[FIRST_TOKEN_KWARG] = True
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def export_onnx(
    model: str | None,
    output: Path,
    *,
    texts: Sequence[str],
    check_name: str,
    quantize: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_length: int | None = None,
    format: str = "onnx",
) -> ExportReport:
    """Export `model` to `output/model.onnx` (optionally int8), or with `format="openvino"` to
    `output/model.xml`, if it agrees with fp32 on `texts`.

    >>> report = export_onnx("my-model", Path("my-model-onnx"), texts=["good", "bad"], check_name="x")  # doctest: +SKIP
    >>> report.agreement.label_agreement  # doctest: +SKIP
    1.0
    """
    from clearpipe.classifier import load

    if quantize not in (None, *QUANTIZATIONS):
        raise InputError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}; got {quantize!r}")
    if format not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}; got {format!r}")
    if quantize == "int8-dynamic" and format != "openvino":
        raise InputError(
            "--quantize int8-dynamic is for --format openvino; "
            "ONNX Runtime's --quantize int8 already quantizes activations at run time"
        )
    refuse_export(model, "exported again")
    if format == "openvino":
        to_openvino.require(quantize)  # before the slow part, a missing package says how to install it
    if output.exists() and any(output.iterdir()):
        raise InputError(f"{output} already exists and is not empty; choose a new --output folder")
    reference = load(model, dtype="float32", device="cpu", max_length=max_length)
    if isinstance(reference, TokenClassifier) and format == "openvino" and quantize == "int8":
        raise InputError(
            f"{model}: --format openvino --quantize int8 is for sequence classifiers (its float "
            "referee re-runs one label per row); for a token-classification (NER) model use "
            "--format onnx --quantize int8, or --quantize int8-dynamic"
        )
    linears.restore(reference.model)  # the exporter traces plain nn.Linear, not oneDNN's packed kernels
    partial = output.with_name(output.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        _write_onnx(reference, partial / ONNX_FILE)
        if format == "openvino":
            to_openvino.convert(partial / ONNX_FILE, partial, reference, texts, quantize)
            (partial / ONNX_FILE).unlink()  # the folder is OpenVINO's alone
        elif quantize == "int8":
            _quantize_int8(partial / ONNX_FILE)
        reference.model.config.save_pretrained(partial)
        reference.tokenizer.save_pretrained(partial)
        group = None
        if quantize == "int8-dynamic":
            agreement, group = _check_groups(reference, partial, texts, threshold, max_length, output)
        else:
            agreement = check_export(reference, partial, texts, threshold, max_length=max_length, name=output)
        margin = None
        if format == "openvino" and quantize == "int8":
            margin = to_openvino.measure_referee_margin(partial, texts, reference.max_length)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    report = ExportReport(
        str(output), format, quantize, check_name, agreement, threshold, reference.max_length, margin, group
    )
    (partial / EXPORT_INFO).write_text(json.dumps(asdict(report), indent=2) + "\n", encoding="utf-8")
    if output.exists():
        output.rmdir()
    partial.rename(output)
    return report


def refuse_export(source: str | None, action: str) -> None:
    """Refuse a folder written by `clearpipe export` where a checkpoint is needed: its graph has
    no weights to export again or to train (`action` says which), but the checkpoint it came from has.

    >>> refuse_export("my-model-onnx", "exported again")  # doctest: +SKIP
    Traceback (most recent call last):
    InputError: my-model-onnx is a folder written by `clearpipe export` (ONNX), which cannot be ...
    """
    folder = Path(source) if source is not None else None
    if folder is None or not folder.is_dir():
        return
    kinds = {ONNX_FILE: "ONNX", OPENVINO_FILE: "OpenVINO"}
    kind = next((name for file, name in kinds.items() if (folder / file).is_file()), None)
    if kind is not None:
        raise InputError(
            f"{source} is a folder written by `clearpipe export` ({kind}), which cannot be {action}; "
            "pass the checkpoint it was exported from (a folder with config.json and "
            "model.safetensors, or a hub id)"
        )


def _check_groups(
    reference, partial: Path, texts: Sequence[str], threshold: float, max_length: int | None, output: Path
) -> tuple[Agreement, int]:
    """The agreement of an int8-dynamic export and the first group size in
    `OPENVINO_DYNAMIC_GROUPS` (fastest first) at which it passes the guard; the folder's record
    says which one the runtime uses, so it is written before each check."""
    *faster, safest = OPENVINO_DYNAMIC_GROUPS
    for group in faster:
        (partial / EXPORT_INFO).write_text(json.dumps({"activation_group": group}), encoding="utf-8")
        with contextlib.suppress(AccuracyError):  # too coarse for this model: try the next size
            return check_export(
                reference, partial, texts, threshold, max_length=max_length, name=output
            ), group
    (partial / EXPORT_INFO).write_text(json.dumps({"activation_group": safest}), encoding="utf-8")
    return check_export(reference, partial, texts, threshold, max_length=max_length, name=output), safest


def check_export(
    reference,
    exported: Path,
    texts: Sequence[str],
    threshold: float,
    max_length: int | None = None,
    name: Path | None = None,
) -> Agreement:
    """Compare the exported folder with the fp32 `reference` Classifier; raise `AccuracyError` if worse.

    >>> check_export(clearpipe.load("m", dtype="float32"), Path("m-onnx"), texts, 0.99)  # doctest: +SKIP
    """
    from clearpipe.classifier import load

    if not texts:
        raise InputError("the accuracy check needs at least one text")
    candidate = load(str(exported), device="cpu", max_length=max_length)
    if isinstance(reference, TokenClassifier):
        agreement = _token_agreement(reference, candidate, list(texts))
    else:
        agreement = compare(reference.predict_items(list(texts)), candidate.predict_items(list(texts)))
    require(agreement, threshold, f"the export to {name or exported}")
    return agreement


def _token_agreement(reference: TokenClassifier, candidate: TokenClassifier, texts: list[str]) -> Agreement:
    """Token for token (special tokens aside), the best labels of the export against fp32's, and
    per text whether the entities are the same (type, word, offsets; scores aside)."""
    ours, theirs = reference.scores(texts), candidate.scores(texts)
    keep = [~np.asarray(spans.special, dtype=bool) for spans in ours.spans]
    same = [
        [_key(e) for e in reference.postprocess(spans, a)]
        == [_key(e) for e in candidate.postprocess(spans, b)]
        for spans, a, b in zip(ours.spans, ours.logits, theirs.logits, strict=True)
    ]
    return compare_tokens(
        [reference.probabilities(a)[k] for a, k in zip(ours.logits, keep, strict=True)],
        [candidate.probabilities(b)[k] for b, k in zip(theirs.logits, keep, strict=True)],
        same,
    )


def _key(entity) -> tuple[str, str, int, int]:
    return entity.label, entity.word, entity.start, entity.end


def _example(reference) -> Encoded:
    """Two padded rows to trace the graph with, tokenized by the model's own stage 1."""
    texts = ["an example text to trace", "and a shorter one"]
    if not isinstance(reference, TokenClassifier):
        return reference.preprocess(texts)
    tokenizer = reference.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return collate(reference.tokenize(texts).tokenized, [0, 1], pad_id, tokenizer.padding_side)


def _write_onnx(reference, path: Path) -> None:
    use_types = reference.settings.use_token_type_ids
    wrapped = _LogitsOnly(reference.model, use_types).eval()
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] * use_types)
    example = _example(reference)
    args = (example.input_ids, example.attention_mask) + ((example.token_type_ids,) if use_types else ())
    batch = torch.export.Dim("batch")
    seq = torch.export.Dim("sequence", max=reference.max_length)
    # The exporter narrates every step on stdout and its logger; the command reports the outcome.
    quiet = contextlib.redirect_stdout(io.StringIO())
    with warnings.catch_warnings(), quiet, _silenced("torch.onnx", "torch.export", "torch._dynamo"):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapped,
            args,
            str(path),
            dynamo=True,
            input_names=names,
            output_names=["logits"],
            dynamic_shapes={name: {0: batch, 1: seq} for name in names},
            opset_version=OPSET,
            external_data=False,
            verbose=False,
        )


@contextlib.contextmanager
def _silenced(*loggers: str):
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _quantize_int8(path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    import onnx

    model = onnx.load(str(path))
    # The exporter's recorded intermediate shapes trip the quantizer's own shape inference;
    # dropping them lets it infer every shape afresh.
    del model.graph.value_info[:]
    fp32 = path.with_name("model.fp32.onnx")
    onnx.save(model, str(fp32))
    path.unlink()
    # Signed int8 weights (the VNNI kernels of x86 CPUs take them directly), one scale per output
    # channel: on MiniLM this keeps more labels than one scale per tensor, at the same speed.
    with _silenced("root"):
        quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=True)
    fp32.unlink()
