"""What `clearpipe export` writes into its folder, by name (no torch: `clearpipe.lite` reads these).

An ONNX export holds `ONNX_FILE`; an OpenVINO one `OPENVINO_FILE` (beside it a `.bin` with the
weights) and, when int8, `REFEREE_FILE`: the same graph in float, which re-runs int8's close
calls (`clearpipe.engine.recheck`). Both hold the checkpoint's `config.json` and tokenizer files,
and `EXPORT_INFO`, the export's record (`clearpipe.onnx.export.ExportReport`).
"""

from __future__ import annotations

import json
from pathlib import Path

from clearpipe.errors import InputError

ONNX_FILE = "model.onnx"
OPENVINO_FILE = "model.xml"
REFEREE_FILE = "referee.xml"
EXPORT_INFO = "clearpipe_export.json"
OPENVINO_PRECISIONS = {"auto": None, "float32": "f32", "bfloat16": "bf16"}
"""`load(dtype=...)` of an OpenVINO folder -> OpenVINO's inference precision hint (None: its own
choice, bf16 on CPUs with AVX-512 BF16 or AMX, else f32); int8 layers stay int8 whatever the hint."""


def check_dtype(folder: str | Path, format: str, dtype: str) -> None:
    """Refuse, naming `folder`, a `dtype` its export (`format` "onnx" or "openvino") cannot run
    in: an ONNX graph runs as exported, an OpenVINO one in one of `OPENVINO_PRECISIONS`.

    >>> check_dtype("exported/", "onnx", "float32")
    """
    if format == "openvino" and dtype not in OPENVINO_PRECISIONS:
        names = ", ".join(OPENVINO_PRECISIONS)
        raise InputError(f"{folder} is an OpenVINO export, which runs in {names}; got dtype={dtype!r}")
    if format == "onnx" and dtype not in ("auto", "float32"):
        raise InputError(f"{folder} is an ONNX export, which runs as exported; drop dtype={dtype!r}")


def referee_margin(folder: str | Path) -> float | None:
    """The close-call margin `clearpipe export` measured for an int8 folder's float graph, or None
    where the folder has no float graph (float exports, and int8 ones written before 2026-12-06).

    >>> referee_margin("exported-int8/")  # doctest: +SKIP
    0.41
    """
    if not (Path(folder) / REFEREE_FILE).is_file():
        return None
    margin = _record(folder).get("referee_margin")
    return None if margin is None else float(margin)


def activation_group(folder: str | Path) -> int | None:
    """The activation group size an `int8-dynamic` export was checked with (`clearpipe export`
    records it), or None where the folder has no record of one.

    >>> activation_group("exported-int8-dynamic/")  # doctest: +SKIP
    128
    """
    group = _record(folder).get("activation_group")
    return None if group is None else int(group)


def export_kind(folder: str | Path) -> str:
    """What an export folder runs, for a person to read: its format and quantization.

    >>> export_kind("exported-int8-dynamic/")  # doctest: +SKIP
    'openvino int8-dynamic'
    """
    fmt = "openvino" if (Path(folder) / OPENVINO_FILE).is_file() else "onnx"
    quantize = _record(folder).get("quantize")
    return f"{fmt} {quantize}" if quantize else fmt


def _record(folder: str | Path) -> dict:
    """The folder's `EXPORT_INFO`, or {} where it has none (folders written by hand, or old ones)."""
    info = Path(folder) / EXPORT_INFO
    return json.loads(info.read_text(encoding="utf-8")) if info.is_file() else {}
