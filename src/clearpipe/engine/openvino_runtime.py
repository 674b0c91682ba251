"""The OpenVINO backend: a folder written by `clearpipe export --format openvino` loaded as a model.

Such a folder holds the OpenVINO IR (`model.xml` and `model.bin`, from the same first-token ONNX
graph `--format onnx` writes, int8 through nncf with `--quantize int8`), the checkpoint's
`config.json` and tokenizer files, and `clearpipe_export.json` describing the export and its
accuracy check. It loads as the ONNX backend's `GraphModel` (run by the engine's `GraphRunner`).
The model compiles with OpenVINO's defaults for the CPU (bf16 inference on CPUs with AVX-512 BF16
or AMX, else float32) unless a precision is asked for (`load(dtype="float32")` gives OpenVINO's
float32, as the parity tests use). openvino is imported when such a folder is loaded, never before.
"""

from __future__ import annotations

from pathlib import Path

import torch

from clearpipe.engine.exported import OPENVINO_FILE
from clearpipe.engine.graphs import open_graph
from clearpipe.engine.onnx_runtime import GraphModel
from clearpipe.engine.sessions import require_openvino
from clearpipe.errors import CheckpointError
from clearpipe.loading import load_config


def is_openvino_folder(source: str) -> bool:
    """True when `source` is a folder written by `clearpipe export --format openvino`."""
    return (Path(source) / OPENVINO_FILE).is_file()


def load_openvino(
    source: str,
    device: torch.device,
    threads: int | None = None,
    dtype: str = "auto",
) -> GraphModel:
    """Compile `source/model.xml` for the CPU with `threads` inference threads, in OpenVINO's own
    choice of precision (`dtype="auto"`) or in float32 or bfloat16 (int8 layers stay int8). An int8
    export's float graph is opened by `graphs.export_referee`.

    >>> model = load_openvino("exported/", torch.device("cpu"))  # doctest: +SKIP
    """
    require_openvino(f"{source} is an OpenVINO export; running it")  # before the device's complaint
    if device.type != "cpu":
        raise CheckpointError(
            f"{source} is an OpenVINO export, which clearpipe runs on the CPU only; use --device cpu"
        )
    # Same count as PyTorch uses: one thread per physical core, unless `threads` says otherwise.
    graph = open_graph(Path(source) / OPENVINO_FILE, threads or torch.get_num_threads(), dtype)
    return GraphModel(graph, load_config(source))
