"""An exported graph opened in its runtime, without torch: one place for the engine's backends
(`onnx_runtime`, `openvino_runtime`) and `clearpipe.lite` to import the runtime, say how to
install it when it is missing, and set its threads and precision.

`threads=None` leaves each runtime its own default, one thread per physical core; the engine
passes PyTorch's count instead, so that every backend of one process uses the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clearpipe.engine.exported import OPENVINO_PRECISIONS, activation_group
from clearpipe.errors import CheckpointError

OPENVINO_INSTALL = "pip install 'clearpipe[openvino]'"
ONNX_INSTALL = "pip install 'clearpipe[onnx]'"
OPENVINO_DYNAMIC_GROUPS = (128, 32)
"""Values per group when OpenVINO quantizes activations at run time, for matrix products whose
weights are int8 (`export --quantize int8-dynamic`; other graphs have none): the export keeps the
first its accuracy guard passes and records it, and every OpenVINO graph is compiled with its
folder's record (else the last, the safest), not OpenVINO's own default (32 in 2026.4), so an
export runs as it was checked on every version. On the embedded model, quiet 2-core Zen 4 (AG
News / SST-2 label agreement with fp32; AG News texts/s, best of 3 passes, fresh processes): 128
-> 99.4% / 99.8%, 412-513; 64 -> 99.5% / 99.7%, 387-455; 32 -> 99.7% / 99.8%, 337-414. A model
with outlying activations may need the smaller groups (a tiny random BERT with large weights,
whose hidden state is one group of 128, kept 85% of labels at 128)."""


def require_openvino(what: str) -> Any:
    """The `openvino` module, or a `CheckpointError` saying that `what` needs it and how to install it."""
    try:
        import openvino
    except ImportError:
        raise CheckpointError(f"{what} needs OpenVINO: {OPENVINO_INSTALL}") from None
    return openvino


def require_onnxruntime(what: str) -> Any:
    """The `onnxruntime` module, or a `CheckpointError` saying that `what` needs it and how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise CheckpointError(f"{what} needs onnxruntime: {ONNX_INSTALL}") from None
    return onnxruntime


def compile_openvino(path: Path, threads: int | None, dtype: str) -> Any:
    """`path` (an IR's .xml) compiled for the CPU with `threads` inference threads, in OpenVINO's
    own precision (`dtype="auto"`) or in float32 or bfloat16 (int8 layers stay int8).

    >>> compiled = compile_openvino(Path("exported/model.xml"), 2, "auto")  # doctest: +SKIP
    """
    ov = require_openvino(f"{path.parent} is an OpenVINO export; running it")
    config: dict[str, object] = {}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    if OPENVINO_PRECISIONS[dtype] is not None:
        config["INFERENCE_PRECISION_HINT"] = OPENVINO_PRECISIONS[dtype]
    core = ov.Core()
    if "DYNAMIC_QUANTIZATION_GROUP_SIZE" in core.get_property("CPU", "SUPPORTED_PROPERTIES"):
        group = activation_group(path.parent) or OPENVINO_DYNAMIC_GROUPS[-1]
        config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = group
    return core.compile_model(core.read_model(path), "CPU", config)


def onnx_session(path: Path, threads: int | None, providers: list | None = None) -> Any:
    """An ONNX Runtime session on `path` with every graph optimization, `threads` intra-op
    threads, and `providers` (default: the CPU's).

    >>> session = onnx_session(Path("exported/model.onnx"), 2)  # doctest: +SKIP
    """
    ort = require_onnxruntime(f"{path.parent} is an ONNX export; running it")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or 0  # 0: ONNX Runtime's default, one per physical core
    return ort.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])
