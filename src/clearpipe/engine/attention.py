"""Self-attention for bf16/fp16 models on the CPU, registered with transformers' attention interface.

Classification batches are short rows (SST-2 averages 25 tokens) and many of them. PyTorch's CPU
flash-attention kernel, which `sdpa` picks, works in blocks sized for long sequences and spent
about a fifth of the embedded MiniLM's bf16 time on SST-2 in attention that is 2% of its FLOPs.
Two batched matrix multiplies with a float32 softmax between them do the same work in less time
(SST-2 batches ran 11% faster, AG News 7%) and land closer to float32 (largest probability
difference against fp32 on SST-2: 0.028, against 0.046 with `sdpa`). In fp32 the two measured
the same, so fp32 models keep `sdpa`; int8 models (bf16 between their int8 linears) use this one;
GPUs keep their fused kernels.

`use_cpu_attention` switches a loaded model over; the model's code is untouched, transformers
calls `attend` where it would call its own attention function.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from clearpipe.engine import packing

NAME = "clearpipe_cpu"
_REDUCED = (torch.bfloat16, torch.float16)


def attend(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    clearpipe_pack: packing.Packed | None = None,
    **_: object,
) -> tuple[torch.Tensor, None]:
    """Softmax(Q K^T * scaling + mask) V for (batch, heads, seq, head_dim) inputs.

    Returns (batch, seq, heads, head_dim), the layout transformers' attention functions return,
    and no attention weights. `attention_mask` is the additive float32 mask (0 or a large
    negative number) of shape (batch, 1, seq, seq), or None when no row is padded. Inference
    only: `dropout` is ignored. With `clearpipe_pack` (a `clearpipe.engine.packing.Packed` batch) the
    inputs are (1, heads, N, d) for the batch's N real tokens: each row's tokens are gathered
    into (rows, heads, T, d) for the product, and the output is packed back to (1, N, heads, d).

    >>> out, _ = attend(layer, q, k, v, None)  # doctest: +SKIP
    """
    scaling = query.size(-1) ** -0.5 if scaling is None else scaling
    if clearpipe_pack is not None:
        per_row, _ = attend(
            module,
            packing.unpack_heads(clearpipe_pack, query),
            packing.unpack_heads(clearpipe_pack, key),
            packing.unpack_heads(clearpipe_pack, value),
            clearpipe_pack.key_mask,
            scaling,
        )
        return packing.repack(clearpipe_pack, per_row), None
    # Scores come out of the matmul in the model's dtype; the softmax runs in float32, where
    # the mask and the exponent keep their precision.
    scores = torch.matmul(query, key.transpose(2, 3)).float().mul_(scaling)  # (B, H, T, T)
    if attention_mask is not None:
        scores.add_(attention_mask)
    weights = torch.softmax(scores, dim=-1).to(value.dtype)
    return torch.matmul(weights, value).transpose(1, 2), None  # (B, T, H, d)


def _float32_mask(**kwargs: object) -> torch.Tensor | None:
    # transformers builds the additive mask in the activations' dtype; `attend` adds it in float32.
    return eager_mask(**(kwargs | {"dtype": torch.float32}))


AttentionInterface.register(NAME, attend)
AttentionMaskInterface.register(NAME, _float32_mask)


def use_cpu_attention(model: torch.nn.Module) -> bool:
    """Run `model`'s self-attention through `attend` when it is a bf16/fp16 model on the CPU.

    Returns True when switched. Models whose code does not go through transformers' attention
    interface, and models on other devices or in other dtypes, are left as they are.

    >>> use_cpu_attention(AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.bfloat16))  # doctest: +SKIP
    True
    """
    if not isinstance(model, PreTrainedModel) or model.device.type != "cpu" or model.dtype not in _REDUCED:
        return False
    # A model whose attention is its own code (MPNet) accepts the switch, then gets its mask in
    # float32 from `_float32_mask` and adds it to bf16 scores: its softmax and V disagree in
    # dtype and the forward fails. Only models that call the attention interface switch.
    if not getattr(model, "_supports_attention_backend", False):
        return False
    try:
        model.set_attn_implementation(NAME)
    except (ValueError, ImportError):  # a model without the attention interface refuses
        return False
    return model.config._attn_implementation == NAME
