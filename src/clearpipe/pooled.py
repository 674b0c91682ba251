"""Stage 2 for a sentence encoder with a linear head: the few-shot (SetFit) classifier's model.

A SetFit model is a sentence encoder whose mean-pooled, L2-normalised embedding goes through one
linear layer: `logits = W · normalize(mean_pool(last_hidden_state, attention_mask)) + b`. No
transformers head computes that (their heads read the first token), so clearpipe builds the
class here, per encoder family, as transformers builds its own heads: a `*PreTrainedModel`
subclass holding the encoder under the family's prefix (`bert.`, `mpnet.`, ...) and a `head`.
Saved with `save_pretrained`, the folder's encoder loads with plain `AutoModel.from_pretrained`
(the prefix is transformers' own convention), and `config.json` says how the head is applied
under `clearpipe_head`, which is how `loading.load_checkpoint` recognises such a folder.
"""

from __future__ import annotations

import copy
from functools import cache

import torch
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.auto.modeling_auto import MODEL_MAPPING

from clearpipe.forward import mean_pool

HEAD_KEY = "clearpipe_head"
"""The config.json key of a pooled classifier: `{"pooling": "mean", "normalize": true}`."""

HEAD = {"pooling": "mean", "normalize": True}


def is_pooled(config: PretrainedConfig) -> bool:
    """True when `config` is a pooled classifier's, written by `clearpipe train` in few-shot mode.

    >>> is_pooled(AutoConfig.from_pretrained("path/to/setfit-folder"))  # doctest: +SKIP
    True
    """
    return isinstance(getattr(config, HEAD_KEY, None), dict)


@cache
def pooled_class(config_class: type[PretrainedConfig]) -> type[PreTrainedModel]:
    """The pooled classifier class for one encoder family (BERT, MPNet, RoBERTa, ...).

    It subclasses the family's `*PreTrainedModel`, so weight initialisation, attention switching
    and `save_pretrained` are transformers' own.

    >>> pooled_class(BertConfig).__name__
    'BertMeanPooledClassifier'
    """
    encoder_class = MODEL_MAPPING[config_class]
    base = encoder_class.__mro__[1]  # e.g. BertModel -> BertPreTrainedModel

    def __init__(self, config: PretrainedConfig) -> None:
        base.__init__(self, config)
        setattr(self, self.base_model_prefix, _encoder(encoder_class, config))
        self.head = torch.nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    name = f"{encoder_class.__name__.removesuffix('Model')}MeanPooledClassifier"
    return type(name, (base,), {"__init__": __init__, "forward": _forward, "__module__": __name__})


def _encoder(encoder_class: type[PreTrainedModel], config: PretrainedConfig) -> PreTrainedModel:
    # The encoder shares the classifier's config object, so switching attention on one switches both.
    try:
        return encoder_class(config, add_pooling_layer=False)  # the pooler reads the first token: unused
    except TypeError:  # families without a pooler (DistilBERT)
        return encoder_class(config)


def _forward(
    self: PreTrainedModel,
    input_ids: torch.Tensor | None = None,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
    inputs_embeds: torch.Tensor | None = None,
    output_hidden_states: bool | None = None,
    output_attentions: bool | None = None,
    return_dict: bool | None = None,
) -> SequenceClassifierOutput:
    """Encoder -> mean pool over real tokens -> unit length -> head: (B, num_labels) logits."""
    inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "inputs_embeds": inputs_embeds}
    if token_type_ids is not None:
        inputs["token_type_ids"] = token_type_ids
    out = self.base_model(
        **inputs, output_hidden_states=output_hidden_states, output_attentions=output_attentions
    )
    if attention_mask is None:  # every token is real
        attention_mask = torch.ones(out.last_hidden_state.shape[:2], device=out.last_hidden_state.device)
    pooled = mean_pool(out.last_hidden_state, attention_mask)  # (B, H)
    pooled = torch.nn.functional.normalize(pooled, dim=-1)
    return SequenceClassifierOutput(
        logits=self.head(pooled), hidden_states=out.hidden_states, attentions=out.attentions
    )


def from_encoder(
    encoder: PreTrainedModel, weight: torch.Tensor, bias: torch.Tensor, labels: list[str]
) -> PreTrainedModel:
    """A pooled classifier from a (fine-tuned) encoder and a fitted head: `weight` (labels, hidden).

    >>> model = from_encoder(encoder, torch.zeros(2, 384), torch.zeros(2), ["neg", "pos"])  # doctest: +SKIP
    """
    config = copy.deepcopy(encoder.config)
    config.num_labels = len(labels)
    config.id2label = dict(enumerate(labels))
    config.label2id = {name: i for i, name in enumerate(labels)}
    setattr(config, HEAD_KEY, dict(HEAD))
    model = pooled_class(type(config))(config)
    loaded = model.base_model.load_state_dict(encoder.state_dict(), strict=False)
    if loaded.missing_keys:  # only the encoder's unused pooler may be left over, never a missing weight
        raise ValueError(f"the encoder lacks weights: {loaded.missing_keys[:4]}")
    with torch.no_grad():
        model.head.weight.copy_(weight)
        model.head.bias.copy_(bias)
    return model.eval()


def load_pooled(source: str, config: PretrainedConfig, dtype: torch.dtype) -> tuple[PreTrainedModel, dict]:
    """Load a pooled classifier folder, with transformers' loading info (missing keys).

    >>> model, info = load_pooled("path/to/setfit-folder", config, torch.float32)  # doctest: +SKIP
    """
    return pooled_class(type(config)).from_pretrained(
        source, config=config, dtype=dtype, output_loading_info=True
    )
