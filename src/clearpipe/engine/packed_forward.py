"""Padding-free batches through the model: the base model on the packed sequence, then the head.

`clearpipe.engine.packing` lays a batch's rows end to end and `clearpipe.engine.attention`
attends within each row; this module runs such a batch and applies each architecture's
classification head to each row's first token. `can_pack` says which models can.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import PreTrainedModel

from clearpipe.engine import attention, first_token, packing
from clearpipe.forward import FIRST_TOKEN_KWARG

# The classification heads of the models that can run packed, on each row's first token (rows, H),
# as their own forward applies them to `hidden_states[:, 0]`.
_HEADS: dict[str, Callable[[PreTrainedModel, torch.Tensor], torch.Tensor]] = {
    "BertForSequenceClassification": lambda m, first: m.classifier(m.dropout(m.bert.pooler(first[:, None]))),
    "DistilBertForSequenceClassification": lambda m, first: m.classifier(
        m.dropout(torch.relu(m.pre_classifier(first)))
    ),
    "RobertaForSequenceClassification": lambda m, first: m.classifier(first[:, None]),
}


def can_pack(model: PreTrainedModel) -> bool:
    """True for the classifiers that `forward` can run on packed batches (see `clearpipe.engine.packing`):
    BERT, DistilBERT and RoBERTa on `clearpipe.engine.attention` (bf16/fp16 on the CPU).

    >>> can_pack(clearpipe.load(path, dtype="bfloat16").model)  # doctest: +SKIP
    True
    """
    return type(model).__name__ in _HEADS and model.config._attn_implementation == attention.NAME


def position_offset(model: PreTrainedModel) -> int:
    """Where a row's position ids start: 0, or after the padding index for RoBERTa."""
    return model.config.pad_token_id + 1 if model.config.model_type == "roberta" else 0


def forward_packed(model: PreTrainedModel, packed: packing.Packed) -> torch.Tensor:
    """Run a packed batch (see `clearpipe.engine.packing`): float32 logits (rows, num_labels).

    The base model runs on the packed sequence; the head is applied to each row's first token as
    the model's own forward applies it to `hidden_states[:, 0]`.

    >>> forward_packed(model, packing.pack(tokenized, [0, 1], position_offset(model))).shape  # doctest: +SKIP
    torch.Size([2, 2])
    """
    if not can_pack(model):
        raise ValueError(f"{type(model).__name__} cannot run a packed batch; see can_pack")
    # `can_pack` models run `clearpipe.engine.attention`, which only CPU models do: tensors stay put.
    inputs = {"input_ids": packed.input_ids, "position_ids": packed.position_ids, "clearpipe_pack": packed}
    if model.config.model_type != "distilbert":
        # Explicit zeros: the models' default slices a buffer of max-length size, and a packed
        # batch can be longer than that.
        types = (
            packed.token_type_ids if packed.token_type_ids is not None else torch.zeros_like(packed.input_ids)
        )
        inputs["token_type_ids"] = types
    pruned = first_token.installed(model)
    if pruned:
        inputs[FIRST_TOKEN_KWARG] = True
    with torch.inference_mode():
        hidden = model.base_model(**inputs).last_hidden_state  # (1, N, H), or (B, 1, H) when pruned
        first = hidden[:, 0] if pruned else hidden[0, packed.starts]  # each row's first token
        logits = _HEADS[type(model).__name__](model, first)  # (B, num_labels)
    return logits.float().cpu()
