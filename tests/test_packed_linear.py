"""PackedLinear: bf16 CPU linear layers with a weight reordered once, bit-identical to nn.Linear."""

from __future__ import annotations

import copy

import torch
from transformers import AutoModelForSequenceClassification

import clearpipe
from clearpipe import packed_linear
from clearpipe.packed_linear import PackedLinear

TEXTS = ["the film was good", "bad", "a very very boring plot with awful scenes and bad actors", "fun"]


def _bf16(folder):
    return AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.bfloat16).eval()


def test_a_packed_model_gives_bit_identical_logits(tiny):
    folder = tiny("bert", 3)
    clf = clearpipe.load(folder, dtype="bfloat16")
    assert any(isinstance(m, PackedLinear) for m in clf.model.modules())
    plain = _bf16(folder)
    plain.set_attn_implementation(clf.model.config._attn_implementation)
    encoded = clf.preprocess(TEXTS)
    with torch.inference_mode():
        expected = plain(input_ids=encoded.input_ids, attention_mask=encoded.attention_mask).logits
    assert torch.equal(clf.forward(encoded), expected.float())


def test_float32_models_are_left_alone(tiny):
    model = AutoModelForSequenceClassification.from_pretrained(tiny("bert", 2), dtype=torch.float32)
    assert packed_linear.pack_linears(model) == 0
    assert not any(isinstance(m, PackedLinear) for m in model.modules())


def test_a_changed_weight_is_packed_again():
    layer = torch.nn.Linear(16, 8).to(torch.bfloat16)
    assert packed_linear.pack_linears(torch.nn.Sequential(layer)) == 1
    x = torch.randn(3, 16, dtype=torch.bfloat16)
    with torch.inference_mode():
        before = layer(x)
    with torch.no_grad():
        layer.weight.mul_(2)
    with torch.inference_mode():
        after = layer(x)
    assert not torch.equal(before, after)
    assert torch.equal(after, torch.nn.functional.linear(x, layer.weight, layer.bias))


def test_copies_widen_to_float32_and_gradients_take_the_plain_path(tiny):
    # What Integrated Gradients does with a bf16 classifier: a float32 copy, with gradients.
    model = _bf16(tiny("bert", 2))
    packed_linear.pack_linears(model)
    wide = copy.deepcopy(model).float()
    ids = torch.tensor([[2, 7, 9, 3]])
    embeds = wide.get_input_embeddings()(ids).detach().requires_grad_(True)
    wide(inputs_embeds=embeds).logits[0, 1].backward()
    assert embeds.grad is not None and embeds.grad.abs().sum() > 0
