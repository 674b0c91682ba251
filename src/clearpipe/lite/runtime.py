"""An exported graph as a numpy function: OpenVINO's compiled model or an ONNX Runtime session.

`open_graph` picks the runtime by the file it is given (`.xml`: OpenVINO, `.onnx`: ONNX Runtime);
`Graph.run` takes one padded batch of host arrays and returns its logits. Neither runtime is
imported before a folder needs it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from clearpipe.engine.exported import check_dtype
from clearpipe.engine.sessions import compile_openvino, onnx_session


@dataclass(frozen=True)
class Graph:
    """One compiled graph: `run(feeds)` maps input name -> (B, T) int64 array to (B, labels) logits."""

    run_batch: Callable[[dict[str, np.ndarray]], np.ndarray]
    input_names: tuple[str, ...]
    path: Path
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Logits (B, labels) as float32 for one padded batch; only the graph's inputs are passed."""
        with self.lock:  # one infer request or session run at a time; its output buffer is reused
            logits = self.run_batch({k: v for k, v in feeds.items() if k in self.input_names})
        return np.array(logits, dtype=np.float32)  # a copy: OpenVINO reuses its output tensor


def open_graph(path: Path, threads: int | None = None, dtype: str = "auto") -> Graph:
    """Compile `path` for the CPU with `threads` inference threads (None: one per physical core,
    each runtime's default); `dtype` applies to OpenVINO graphs.

    >>> graph = open_graph(Path("exported/model.xml"), threads=2)  # doctest: +SKIP
    """
    openvino = path.suffix == ".xml"
    check_dtype(path.parent, "openvino" if openvino else "onnx", dtype)  # as `clearpipe.load` does
    return _openvino(path, threads, dtype) if openvino else _onnxruntime(path, threads)


def _openvino(path: Path, threads: int | None, dtype: str) -> Graph:
    compiled = compile_openvino(path, threads, dtype)
    request = compiled.create_infer_request()
    output = compiled.output(0)
    names = tuple(i.get_any_name() for i in compiled.inputs)
    return Graph(lambda feeds: request.infer(feeds)[output], names, path)


def _onnxruntime(path: Path, threads: int | None) -> Graph:
    session = onnx_session(path, threads)
    names = tuple(i.name for i in session.get_inputs())
    return Graph(lambda feeds: session.run(None, feeds)[0], names, path)
