"""The last encoder layer, computed for each row's first token only.

BERT, DistilBERT and RoBERTa classifiers read one position of the encoder's output: the first
token's (BERT's pooler, DistilBERT's pre-classifier and RoBERTa's head all take
`hidden_states[:, 0]`). Every other position of the last layer is computed and thrown away. In
that layer only the keys and values need every token; the query, the attention output, its
projection, LayerNorm and the feed-forward block need the first token alone. For a 6-layer
MiniLM that is 83% of the last layer's work, 14% of the whole model's, saved with the same
arithmetic on the rows that are kept.

`install` gives the last layer of a supported model a forward that does this when the caller
passes `clearpipe_first_token=True` (`clearpipe.forward.FIRST_TOKEN_KWARG`; transformers hands
extra keyword arguments down to every layer), and runs the layer unchanged otherwise. The engine's forward (`clearpipe.engine.run`)
passes it, and so does `clearpipe.onnx.export` when it traces the ONNX graph; `clearpipe
trace`, token attributions and training see the whole layer, with every position.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import torch
from transformers import PreTrainedModel
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from clearpipe.engine import attention, packing

# Attention implementations whose functions take a query shorter than its keys, with a 4-D
# mask (or none). Flash attention's variable-length masks and flex attention's block masks are
# left alone.
_ATTENTION = ("eager", "sdpa", attention.NAME)
_LAYER_ONLY = ("cache", "past_key_values", "encoder_attention_mask", "use_cache")


def _bert_parts(layer: torch.nn.Module) -> tuple[torch.nn.Module, ...]:
    self_attention = layer.attention.self
    return self_attention, self_attention.query, self_attention.key, self_attention.value


def _bert_rest(layer: torch.nn.Module, attended: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    # BertSelfOutput (projection, residual, LayerNorm), then the feed-forward block.
    return layer.feed_forward_chunk(layer.attention.output(attended, first))


def _distilbert_parts(layer: torch.nn.Module) -> tuple[torch.nn.Module, ...]:
    att = layer.attention
    return att, att.q_lin, att.k_lin, att.v_lin


def _distilbert_rest(layer: torch.nn.Module, attended: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
    after_attention = layer.sa_layer_norm(layer.attention.out_lin(attended) + first)
    return layer.output_layer_norm(layer.ffn(after_attention) + after_attention)


Parts = Callable[[torch.nn.Module], tuple[torch.nn.Module, ...]]
Rest = Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]
# model class -> (its encoder's layers, the attention module and its q/k/v projections, the rest).
_ARCHITECTURES: dict[str, tuple[Callable[[PreTrainedModel], torch.nn.ModuleList], Parts, Rest]] = {
    "BertForSequenceClassification": (lambda m: m.bert.encoder.layer, _bert_parts, _bert_rest),
    "RobertaForSequenceClassification": (lambda m: m.roberta.encoder.layer, _bert_parts, _bert_rest),
    "DistilBertForSequenceClassification": (
        lambda m: m.distilbert.transformer.layer,
        _distilbert_parts,
        _distilbert_rest,
    ),
}


def install(model: torch.nn.Module) -> bool:
    """Let `model`'s last layer compute only the first token when called with `clearpipe.forward.FIRST_TOKEN_KWARG`.

    Returns True when installed: BERT, DistilBERT and RoBERTa sequence classifiers with eager,
    sdpa or `clearpipe.engine.attention` attention, in inference mode. Other models are left as they
    are. The layer's class and parameters do not change (transformers' output recorders and
    `state_dict` see the same model), and without the keyword argument it runs as before.

    >>> install(model)  # doctest: +SKIP
    True
    >>> model(**inputs, clearpipe_first_token=True).logits.shape  # doctest: +SKIP
    torch.Size([2, 2])
    """
    spec = _ARCHITECTURES.get(type(model).__name__)
    if spec is None or model.config._attn_implementation not in _ATTENTION or model.training:
        return False
    last = spec[0](model)[-1]
    last.forward = _LastLayerForward(last, type(model).__name__)
    return True


def installed(model: torch.nn.Module) -> bool:
    """True when `install` gave this model's last layer its first-token forward.

    >>> installed(model)  # doctest: +SKIP
    True
    """
    spec = _ARCHITECTURES.get(type(model).__name__)
    if spec is None:
        return False
    return isinstance(vars(spec[0](model)[-1]).get("forward"), _LastLayerForward)


class _LastLayerForward:
    """The last layer's forward after `install`: whole, or for the first token with that keyword argument.

    An object holding its layer rather than a closure or a bound method, so that
    `copy.deepcopy(model)` and pickling give the copy a forward of the copy's own layer.
    """

    def __init__(self, layer: torch.nn.Module, architecture: str) -> None:
        self.layer = layer
        self.architecture = architecture

    def __call__(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        *args: object,
        clearpipe_first_token: bool = False,
        **kwargs: object,
    ) -> torch.Tensor:
        layer = self.layer
        whole = type(layer).forward
        if not clearpipe_first_token:
            return whole(layer, hidden_states, attention_mask, *args, **kwargs)
        _, parts, rest = _ARCHITECTURES[self.architecture]
        if parts(layer)[0].config._attn_implementation not in _ATTENTION:
            # Switched since `install` (to flash attention, say): run the layer whole and keep
            # what the caller asked for, so that it never meets a mask it cannot take.
            out = whole(layer, hidden_states, attention_mask, *args, **kwargs)
            return _first_rows(out, kwargs.get("clearpipe_pack"))
        return _first_token_layer(layer, parts, rest, hidden_states, attention_mask, kwargs)


def _first_rows(hidden: torch.Tensor, pack: packing.Packed | None) -> torch.Tensor:
    """Each row's first token, (B, 1, H): position 0 of a padded batch, `starts` of a packed one."""
    return hidden[:, :1] if pack is None else hidden[0, pack.starts][:, None]


def _first_token_layer(
    layer: torch.nn.Module,
    parts: Parts,
    rest: Rest,
    hidden: torch.Tensor,
    mask: torch.Tensor | None,
    kwargs: dict,
) -> torch.Tensor:
    """The layer's output at each row's first token, (rows, 1, hidden), padded or packed input."""
    module, query, key, value = parts(layer)
    pack: packing.Packed | None = kwargs.pop("clearpipe_pack", None)
    # What the layer takes for cross-attention and decoding, which an encoder's last layer
    # has no use for; the rest goes to the attention function, as the layer's own code does.
    kwargs = {k: v for k, v in kwargs.items() if k not in _LAYER_ONLY}
    head_dim = module.attention_head_size
    first = _first_rows(hidden, pack).contiguous()  # (B, 1, H)
    rows = first.shape[0]
    q = query(first).view(rows, 1, -1, head_dim).transpose(1, 2)  # (B, heads, 1, d)
    k = key(hidden).view(*hidden.shape[:-1], -1, head_dim).transpose(1, 2)  # (B or 1, heads, T or N, d)
    v = value(hidden).view(*hidden.shape[:-1], -1, head_dim).transpose(1, 2)
    if pack is None:
        # The model's own eager function is the default, as in its attention module.
        eager = sys.modules[type(module).__module__].eager_attention_forward
        attend = ALL_ATTENTION_FUNCTIONS.get_interface(module.config._attn_implementation, eager)
        if mask is not None and mask.dim() == 4 and mask.shape[-2] > 1:
            mask = mask[:, :, :1]  # the first query's row of the (B, 1, T, T) mask
    else:
        # Each real row's keys and values, as `clearpipe.engine.attention` gathers them (fillers dropped).
        attend = attention.attend
        k = packing.unpack_heads(pack, k)[:rows]
        v = packing.unpack_heads(pack, v)[:rows]
        mask = pack.key_mask[:rows]
    attended, _ = attend(module, q, k, v, mask, dropout=0.0, scaling=module.scaling, **kwargs)
    return rest(layer, attended.reshape(rows, 1, -1), first)  # (B, 1, H)
