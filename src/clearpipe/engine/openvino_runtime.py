"""The OpenVINO backend: a folder written by `clearpipe export --format openvino` loaded as a model.

Such a folder holds the OpenVINO IR (`model.xml` and `model.bin`, from the same first-token ONNX
graph `--format onnx` writes, int8 through nncf with `--quantize int8`), the checkpoint's
`config.json` and tokenizer files, and `clearpipe_export.json` describing the export and its
accuracy check. `OpenVinoModel` is called like a transformers model
(`model(input_ids=..., attention_mask=...).logits`), so `clearpipe.forward` runs it as it runs
PyTorch and ONNX Runtime models. The model compiles with OpenVINO's defaults for the CPU (bf16
inference on CPUs with AVX-512 BF16 or AMX, else float32) unless a precision is asked for
(`load(dtype="float32")` gives OpenVINO's float32, as the parity tests use). openvino is imported
when such a folder is loaded, never before.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from transformers import PretrainedConfig

from clearpipe.engine.exported import OPENVINO_FILE
from clearpipe.engine.onnx_runtime import graph_feeds
from clearpipe.engine.sessions import compile_openvino, require_openvino
from clearpipe.errors import CheckpointError
from clearpipe.loading import load_config


@dataclass(frozen=True)
class OpenVinoModel:
    """A compiled OpenVINO model with the checkpoint's config; `input_names` are the graph's inputs."""

    compiled: Any  # openvino.CompiledModel
    request: Any  # openvino.InferRequest, reused for every batch
    config: PretrainedConfig
    input_names: tuple[str, ...]
    path: Path
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)  # one request

    @property
    def device(self) -> torch.device:
        """OpenVINO takes and returns host arrays."""
        return torch.device("cpu")

    @property
    def precision(self) -> str:
        """The inference precision OpenVINO chose: "bf16" or "f32" (int8 layers aside)."""
        return self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()

    def __call__(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> SimpleNamespace:
        """Run the model on one padded batch: an object whose `logits` are (batch, num_labels)."""
        feeds = graph_feeds(self.input_names, input_ids, attention_mask, token_type_ids)
        with self.lock:  # an infer request runs one batch at a time; its output buffer is reused
            logits = self.request.infer(feeds)[self.compiled.output(0)].copy()  # (B, num_labels)
        return SimpleNamespace(logits=torch.from_numpy(logits).float())


def is_openvino_folder(source: str) -> bool:
    """True when `source` is a folder written by `clearpipe export --format openvino`."""
    return (Path(source) / OPENVINO_FILE).is_file()


def load_openvino(
    source: str,
    device: torch.device,
    threads: int | None = None,
    dtype: str = "auto",
    file: str = OPENVINO_FILE,
) -> OpenVinoModel:
    """Compile `source/model.xml` (or `file`: `REFEREE_FILE`, an int8 export's float graph) for the
    CPU with `threads` inference threads, in OpenVINO's own choice of precision (`dtype="auto"`)
    or in float32 or bfloat16 (int8 layers stay int8).

    >>> model = load_openvino("exported/", torch.device("cpu"))  # doctest: +SKIP
    """
    require_openvino(f"{source} is an OpenVINO export; running it")  # before the device's complaint
    if device.type != "cpu":
        raise CheckpointError(
            f"{source} is an OpenVINO export, which clearpipe runs on the CPU only; use --device cpu"
        )
    path = Path(source) / file
    # Same count as PyTorch uses: one thread per physical core, unless `threads` says otherwise.
    compiled = compile_openvino(path, threads or torch.get_num_threads(), dtype)
    names = tuple(i.get_any_name() for i in compiled.inputs)
    request = compiled.create_infer_request()
    return OpenVinoModel(compiled, request, load_config(source), names, path)
