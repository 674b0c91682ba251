"""An exported graph as the engine runs it, without torch: OpenVINO's compiled model or an ONNX
Runtime session, and `GraphRunner`, the engine's runner over one (`TokenGraphRunner` for a token
classifier's per-token logits).

`open_graph` picks the runtime by the file it is given (`.xml`: OpenVINO, `.onnx`: ONNX Runtime);
`Graph.run` takes one padded batch of host arrays and returns its outputs. `clearpipe.load` on an
exported folder and `clearpipe.lite.load` both run their rows through a `GraphRunner`, so the two
give the same batches, the same padding and the same numbers. Neither runtime is imported before
a folder needs it.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from clearpipe.engine.exported import REFEREE_FILE, check_dtype, referee_margin
from clearpipe.engine.loop import Referee, tokens_first
from clearpipe.engine.sessions import compile_openvino, onnx_session
from clearpipe.tokens import Padded, Tokenized, pad


@dataclass(frozen=True)
class Graph:
    """One compiled graph: `run(feeds)` maps input name -> (B, T) int64 array to its first output.

    `precision` names the float format OpenVINO runs it in ("bf16", "f32"), or "onnx".
    """

    run_batch: Callable[[dict[str, np.ndarray]], np.ndarray]
    input_names: tuple[str, ...]
    path: Path
    precision: str = "onnx"
    native: Any = field(default=None, repr=False, compare=False)  # the runtime's compiled model or session
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """The graph's output for one padded batch, as float32; only the graph's inputs are passed."""
        with self.lock:  # one infer request or session run at a time; its output buffer is reused
            out = self.run_batch({k: v for k, v in feeds.items() if k in self.input_names})
        return np.array(out, dtype=np.float32)  # a copy: OpenVINO reuses its output tensor


@dataclass(frozen=True)
class GraphRunner:
    """The engine's runner (`clearpipe.engine.loop.Runner`) over an exported graph: rows padded
    by `clearpipe.tokens.pad` on the tokenizer's side, run by the graph.

    >>> GraphRunner(open_graph(Path("exported/model.onnx")), width=2).outputs(tok, [0, 1]).shape  # doctest: +SKIP
    (2, 2)
    """

    graph: Graph
    width: int
    pad_id: int = 0
    padding_side: str = "right"

    def padded(self, tokenized: Tokenized, rows: Sequence[int]) -> Padded:
        """The rows as one padded batch, as this runner feeds them."""
        return pad(tokenized, rows, self.pad_id, self.padding_side)

    def outputs(self, tokenized: Tokenized, rows: Sequence[int]) -> np.ndarray:
        """The graph's outputs (rows, width) for these rows."""
        return self.forward(self.padded(tokenized, rows))

    def forward(self, batch: Padded) -> np.ndarray:
        """One padded batch through the graph."""
        return self.graph.run(batch.feeds(self.graph.input_names))


@dataclass(frozen=True)
class TokenGraphRunner(GraphRunner):
    """`GraphRunner` over a token classifier's exported graph, for `loop.run_tokens`: one logit
    vector per token, (rows, tokens, width), each row's tokens first whatever side it is padded on.

    >>> run_tokens(tok, TokenGraphRunner(open_graph(Path("ner-onnx/model.onnx")), width=9), budget)[0].shape  # doctest: +SKIP
    (7, 9)
    """

    def outputs(self, tokenized: Tokenized, rows: Sequence[int]) -> np.ndarray:
        """The graph's per-token outputs (rows, tokens, width) for these rows."""
        batch = self.padded(tokenized, rows)
        return tokens_first(self.forward(batch), batch.lengths, self.padding_side)


def export_referee(
    folder: Path, fast: GraphRunner, threads: int | None, dtype: str, sigmoid: bool = False
) -> Referee | None:
    """The referee of an int8 OpenVINO export run by `fast`: its float graph (`REFEREE_FILE`) with
    the margin the export measured (`referee_margin`); None for an export that has none.

    >>> export_referee(Path("exported-int8"), runner, threads=2, dtype="auto").margin  # doctest: +SKIP
    0.41
    """
    margin = referee_margin(folder)
    if margin is None:
        return None
    graph = open_graph(folder / REFEREE_FILE, threads, dtype)
    return Referee(dataclasses.replace(fast, graph=graph), f"openvino {graph.precision}", margin, sigmoid)


def open_graph(path: Path, threads: int | None = None, dtype: str = "auto", providers: Any = None) -> Graph:
    """Compile `path` with `threads` inference threads (None: one per physical core, each runtime's
    default); `dtype` applies to OpenVINO graphs, `providers` to ONNX Runtime sessions (the CPU's
    when None).

    >>> graph = open_graph(Path("exported/model.xml"), threads=2)  # doctest: +SKIP
    """
    openvino = path.suffix == ".xml"
    check_dtype(path.parent, "openvino" if openvino else "onnx", dtype)
    return _openvino(path, threads, dtype) if openvino else _onnxruntime(path, threads, providers)


def _openvino(path: Path, threads: int | None, dtype: str) -> Graph:
    compiled = compile_openvino(path, threads, dtype)
    request = compiled.create_infer_request()
    output = compiled.output(0)
    names = tuple(i.get_any_name() for i in compiled.inputs)
    precision = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
    return Graph(lambda feeds: request.infer(feeds)[output], names, path, precision, compiled)


def _onnxruntime(path: Path, threads: int | None, providers: Any) -> Graph:
    session = onnx_session(path, threads, providers)
    names = tuple(i.name for i in session.get_inputs())
    return Graph(lambda feeds: session.run(None, feeds)[0], names, path, "onnx", session)
