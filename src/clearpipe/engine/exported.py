"""What `clearpipe export` writes into its folder, by name (no torch: `clearpipe.lite` reads these).

An ONNX export holds `ONNX_FILE`; an OpenVINO one `OPENVINO_FILE` (beside it a `.bin` with the
weights) and, when int8, `REFEREE_FILE`: the same graph in float, which re-runs int8's close
calls (`clearpipe.engine.recheck`). Both hold the checkpoint's `config.json` and tokenizer files,
and `EXPORT_INFO`, the export's record (`clearpipe.onnx.export.ExportReport`).
"""

from __future__ import annotations

import json
from pathlib import Path

ONNX_FILE = "model.onnx"
OPENVINO_FILE = "model.xml"
REFEREE_FILE = "referee.xml"
EXPORT_INFO = "clearpipe_export.json"
OPENVINO_PRECISIONS = {"auto": None, "float32": "f32", "bfloat16": "bf16"}
"""`load(dtype=...)` of an OpenVINO folder -> OpenVINO's inference precision hint (None: its own
choice, bf16 on CPUs with AVX-512 BF16 or AMX, else f32); int8 layers stay int8 whatever the hint."""


def referee_margin(folder: str | Path) -> float | None:
    """The close-call margin `clearpipe export` measured for an int8 folder's float graph, or None
    where the folder has no float graph (float exports, and int8 ones written before 2026-12-06).

    >>> referee_margin("exported-int8/")  # doctest: +SKIP
    0.41
    """
    info = Path(folder) / EXPORT_INFO
    if not (Path(folder) / REFEREE_FILE).is_file() or not info.is_file():
        return None
    margin = json.loads(info.read_text(encoding="utf-8")).get("referee_margin")
    return None if margin is None else float(margin)


def activation_group(folder: str | Path) -> int | None:
    """The activation group size an `int8-dynamic` export was checked with (`clearpipe export`
    records it), or None where the folder has no record of one.

    >>> activation_group("exported-int8-dynamic/")  # doctest: +SKIP
    128
    """
    info = Path(folder) / EXPORT_INFO
    if not info.is_file():
        return None
    group = json.loads(info.read_text(encoding="utf-8")).get("activation_group")
    return None if group is None else int(group)
