"""The ONNX Runtime backend: an exported folder (`clearpipe export`) loaded as a model.

An exported folder holds `model.onnx`, the checkpoint's `config.json` and tokenizer files, and
`clearpipe_export.json` describing the export and its accuracy check. `OnnxModel` only holds the
session and is called like a transformers model (`model(input_ids=..., attention_mask=...).logits`),
so `clearpipe.forward` runs it as it runs PyTorch models. onnxruntime is imported
when such a folder is loaded, never before, so that plain PyTorch use starts as fast as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from transformers import AutoTokenizer, PretrainedConfig

from clearpipe.engine.exported import EXPORT_INFO, ONNX_FILE  # noqa: F401  (re-exported)
from clearpipe.engine.sessions import onnx_session, require_onnxruntime
from clearpipe.errors import CheckpointError
from clearpipe.loading import load_config


@dataclass(frozen=True)
class OnnxModel:
    """An ONNX Runtime session with the checkpoint's config; `input_names` are the graph's inputs."""

    session: Any  # onnxruntime.InferenceSession
    config: PretrainedConfig
    input_names: tuple[str, ...]
    path: Path

    @property
    def device(self) -> torch.device:
        """ONNX Runtime takes and returns host arrays, whatever provider runs the graph."""
        return torch.device("cpu")

    def __call__(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> SimpleNamespace:
        """Run the graph on one padded batch: an object whose `logits` are (batch, num_labels)."""
        feeds = graph_feeds(self.input_names, input_ids, attention_mask, token_type_ids)
        (logits,) = self.session.run(["logits"], feeds)  # (B, num_labels)
        return SimpleNamespace(logits=torch.from_numpy(logits))


def graph_feeds(
    input_names: tuple[str, ...],
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor | None,
) -> dict[str, np.ndarray]:
    """One padded batch as an exported graph's inputs (ONNX Runtime's or OpenVINO's): host arrays,
    with zeros for `token_type_ids` where the graph takes them and the tokenizer made none.

    >>> sorted(graph_feeds(("input_ids", "attention_mask"), ids, mask, None))  # doctest: +SKIP
    ['attention_mask', 'input_ids']
    """
    feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
    if "token_type_ids" in input_names:
        types = token_type_ids if token_type_ids is not None else torch.zeros_like(input_ids)
        feeds["token_type_ids"] = types.numpy()
    return feeds


def is_onnx_folder(source: str) -> bool:
    """True when `source` is a folder written by `clearpipe export --format onnx`."""
    return (Path(source) / ONNX_FILE).is_file()


def load_onnx(source: str, device: torch.device, threads: int | None = None) -> OnnxModel:
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
    path = Path(source) / ONNX_FILE
    # Same count as PyTorch uses: one thread per physical core.
    session = onnx_session(path, threads or torch.get_num_threads(), providers)
    names = tuple(i.name for i in session.get_inputs())
    return OnnxModel(session=session, config=load_config(source), input_names=names, path=path)


def load_tokenizer(source: str) -> Any:
    """The tokenizer saved beside an exported model."""
    return AutoTokenizer.from_pretrained(source)
