"""Stage 2, the model: padded tensors -> logits of shape (batch, num_labels).

This is the only place that runs a model: it moves tensors to the device and turns on
`torch.inference_mode` for PyTorch models, and feeds ONNX Runtime sessions for exported ones.
"""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from clearpipe.onnx_model import OnnxModel
from clearpipe.preprocess import Encoded


def forward(model: PreTrainedModel | OnnxModel, encoded: Encoded, device: torch.device) -> torch.Tensor:
    """Run the model on one batch and return float32 logits (batch, num_labels) on the CPU.

    >>> logits = forward(model, preprocess(tokenizer, ["fine"], 128, True), torch.device("cpu"))
    >>> logits.shape  # doctest: +SKIP
    torch.Size([1, 2])
    """
    if isinstance(model, OnnxModel):
        return _forward_onnx(model, encoded)
    inputs = {
        "input_ids": encoded.input_ids.to(device),
        "attention_mask": encoded.attention_mask.to(device),
    }
    if encoded.token_type_ids is not None:
        inputs["token_type_ids"] = encoded.token_type_ids.to(device)
    with torch.inference_mode():
        logits = model(**inputs).logits  # (B, num_labels)
    # bf16/fp16 logits are widened before softmax so scores keep float32 precision.
    return logits.float().cpu()


def _forward_onnx(model: OnnxModel, encoded: Encoded) -> torch.Tensor:
    feeds = {"input_ids": encoded.input_ids.numpy(), "attention_mask": encoded.attention_mask.numpy()}
    if "token_type_ids" in model.input_names:
        types = encoded.token_type_ids
        feeds["token_type_ids"] = (
            types if types is not None else torch.zeros_like(encoded.input_ids)
        ).numpy()
    (logits,) = model.session.run(["logits"], feeds)  # (B, num_labels)
    return torch.from_numpy(logits).float()
