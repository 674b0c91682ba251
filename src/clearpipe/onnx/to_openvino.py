"""`clearpipe export --format openvino`: the ONNX graph `export` writes, converted to OpenVINO IR.

The IR keeps float32 weights (no fp16 compression on disk); OpenVINO picks the inference
precision when the folder is loaded (`clearpipe.engine.openvino_runtime`). With `--quantize
int8`, nncf's post-training quantization makes weights and activations int8
(`ModelType.TRANSFORMER`: SmoothQuant and bias correction included), its activation ranges
measured on up to `CALIBRATION_ROWS` of the export's validation texts, one text a row, as the
engine would batch them. The accuracy guard then checks the IR on all of those texts.

With `--quantize int8-dynamic`, nncf compresses only the weights to int8 (no calibration data);
OpenVINO's CPU plugin then quantizes each matrix product's activations at run time, per group of
`engine.sessions.OPENVINO_DYNAMIC_GROUPS` values (the export keeps the first its guard passes),
as it does for LLMs. One graph, no referee: on
the embedded model it kept 99.4% of AG News labels and 99.7% of SST-2's (static int8 alone: 98.7%
and 99.3%) in 250-360 MB instead of 420-600 (docs/ENGINE.md).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from pathlib import Path

from clearpipe.engine.exported import OPENVINO_FILE, REFEREE_FILE
from clearpipe.engine.sessions import OPENVINO_INSTALL, require_openvino
from clearpipe.errors import CheckpointError

CALIBRATION_ROWS = 300


def require(quantize: str | None) -> None:
    """Raise a `CheckpointError` naming the install command when the export cannot run here."""
    require_openvino("--format openvino")
    if quantize in ("int8", "int8-dynamic"):
        try:
            import nncf  # noqa: F401
        except ImportError:
            raise CheckpointError(
                f"--format openvino --quantize {quantize} needs nncf: {OPENVINO_INSTALL}"
            ) from None


def convert(onnx_path: Path, folder: Path, reference, texts: Sequence[str], quantize: str | None) -> None:
    """Write `folder/model.xml` (+ .bin) from the ONNX graph at `onnx_path`, int8 if asked:
    `quantize="int8"` static (with a float referee), `"int8-dynamic"` int8 weights alone."""
    ov = require_openvino("--format openvino")
    model = ov.convert_model(str(onnx_path))
    if quantize == "int8":
        # The float graph stays beside the int8 one, to re-run int8's close calls (`measure_referee_margin`);
        # fp16 on disk (half the size), computed in OpenVINO's float precision when loaded.
        ov.save_model(model, str(folder / REFEREE_FILE), compress_to_fp16=True)
        model = _quantize(model, reference, texts)
    elif quantize == "int8-dynamic":
        model = _compress_weights(model)
    ov.save_model(model, str(folder / OPENVINO_FILE), compress_to_fp16=False)


def _quantize(model, reference, texts: Sequence[str]):
    """nncf's int8 of weights and activations, calibrated on `texts`, one a row."""
    import nncf

    names = {i.get_any_name() for i in model.inputs}
    feeds = []
    for text in list(texts)[:CALIBRATION_ROWS]:
        encoded = reference.preprocess([text])
        tensors = {"input_ids": encoded.input_ids, "attention_mask": encoded.attention_mask}
        tensors["token_type_ids"] = encoded.token_type_ids
        feeds.append({k: v.numpy() for k, v in tensors.items() if k in names and v is not None})
    nncf.set_log_level(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):  # its progress bars; the command reports the outcome
        return nncf.quantize(
            model, nncf.Dataset(feeds), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(feeds)
        )


def _compress_weights(model):
    """nncf's int8 weight compression (asymmetric, per output channel): data-free; the CPU plugin
    quantizes activations itself when it runs the graph."""
    import nncf

    nncf.set_log_level(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        return nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)


def measure_referee_margin(folder: Path, texts: Sequence[str], max_length: int) -> float:
    """The gap under which the int8 graph's rows re-run in float: how far int8 moved the logits'
    gaps on `texts`, at `clearpipe.engine.recheck`'s quantile.

    >>> measure_referee_margin(Path("exported-int8"), ["good", "bad"], 128)  # doctest: +SKIP
    0.31
    """
    import dataclasses

    from clearpipe import lite
    from clearpipe.engine import recheck
    from clearpipe.engine.graphs import open_graph

    fast = lite.load(folder, max_length=max_length, referee=False)
    slow = dataclasses.replace(
        fast, runner=dataclasses.replace(fast.runner, graph=open_graph(folder / REFEREE_FILE))
    )
    return recheck.calibrate(fast.logits(list(texts)), slow.logits(list(texts)))
