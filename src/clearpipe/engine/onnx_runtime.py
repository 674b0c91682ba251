"""The ONNX Runtime backend: an exported folder (`clearpipe export`) loaded as a model.

An exported folder holds `model.onnx`, the checkpoint's `config.json` and tokenizer files, and
`clearpipe_export.json` describing the export and its accuracy check. `GraphModel` holds the
compiled graph (`clearpipe.engine.graphs.Graph`, which the engine runs through a `GraphRunner`)
with the checkpoint's config, and can be called like a transformers model
(`model(input_ids=..., attention_mask=...).logits`) for code that holds one batch of tensors.
onnxruntime is imported when such a folder is loaded, never before, so that plain PyTorch use
starts as fast as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from transformers import AutoTokenizer, PretrainedConfig

from clearpipe.engine.exported import EXPORT_INFO, ONNX_FILE  # noqa: F401  (re-exported)
from clearpipe.engine.graphs import Graph, open_graph
from clearpipe.engine.sessions import require_onnxruntime
from clearpipe.errors import CheckpointError
from clearpipe.loading import load_config
from clearpipe.tokens import feeds


@dataclass(frozen=True)
class GraphModel:
    """An exported graph with the checkpoint's config (ONNX Runtime's or OpenVINO's)."""

    graph: Graph
    config: PretrainedConfig

    @property
    def device(self) -> torch.device:
        """Both runtimes take and return host arrays, whatever provider runs the graph."""
        return torch.device("cpu")

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.graph.input_names

    @property
    def path(self) -> Path:
        return self.graph.path

    @property
    def precision(self) -> str:
        """OpenVINO's inference precision ("bf16" or "f32", int8 layers aside), or "onnx"."""
        return self.graph.precision

    @property
    def session(self) -> Any:
        """The onnxruntime.InferenceSession (ONNX exports)."""
        return self.graph.native

    @property
    def compiled(self) -> Any:
        """The openvino.CompiledModel (OpenVINO exports)."""
        return self.graph.native

    def __call__(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> SimpleNamespace:
        """Run the graph on one padded batch: an object whose `logits` are (batch, num_labels)."""
        types = None if token_type_ids is None else token_type_ids.numpy()
        batch = feeds(self.input_names, input_ids.numpy(), attention_mask.numpy(), types)
        return SimpleNamespace(logits=torch.from_numpy(self.graph.run(batch)))


def is_onnx_folder(source: str) -> bool:
    """True when `source` is a folder written by `clearpipe export --format onnx`."""
    return (Path(source) / ONNX_FILE).is_file()


def load_onnx(source: str, device: torch.device, threads: int | None = None) -> GraphModel:
    """Open `source/model.onnx` in ONNX Runtime on `device`, with `threads` intra-op threads.

    >>> model = load_onnx("exported/", torch.device("cpu"))  # doctest: +SKIP
    """
    ort = require_onnxruntime(f"{source} is an ONNX export; running it")
    providers: list = ["CPUExecutionProvider"]
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise CheckpointError(
                "this onnxruntime has no CUDA support; install onnxruntime-gpu or use --device cpu"
            )
        providers.insert(0, ("CUDAExecutionProvider", {"device_id": device.index or 0}))
    # Same count as PyTorch uses: one thread per physical core.
    graph = open_graph(Path(source) / ONNX_FILE, threads or torch.get_num_threads(), providers=providers)
    return GraphModel(graph, load_config(source))


def load_tokenizer(source: str) -> Any:
    """The tokenizer saved beside an exported model."""
    return AutoTokenizer.from_pretrained(source)
