"""clearpipe.engine.first_token: a last layer computed for the first token alone gives the full layer's logits."""

from __future__ import annotations

import contextlib
import copy
import io
import random
from collections.abc import Iterator

import pytest
import torch

import clearpipe
from clearpipe.engine import first_token, packing
from clearpipe.engine.packed_forward import can_pack, position_offset
from clearpipe.engine.run import Runner
from clearpipe.inputs import normalize_inputs
from devices import DEVICES, tolerance

TEXTS = [
    "a good film",
    "bad",
    "a very very boring plot with awful scenes, bad actors and a script that goes nowhere at all",
    "",
    ("the premise", "a hypothesis that is quite a bit longer than the premise"),
    "fun 😀 café",
]
KINDS = ["bert", "distilbert", "roberta"]
# The same arithmetic on the rows kept; float kernels may block a 1-row product differently.
TOLERANCE = {"float32": 1e-5, "bfloat16": 0.02, "int8": 0.02}


def _last_layer(model: torch.nn.Module) -> torch.nn.Module:
    base = model.base_model
    return (base.transformer if hasattr(base, "transformer") else base.encoder).layer[-1]


def _full_logits(clf, batch) -> torch.Tensor:
    """The logits of the model with its last layer run whole, as transformers runs it."""
    layer = _last_layer(clf.model)
    pruned = layer.__dict__.pop("forward")
    try:
        assert not first_token.installed(clf.model)
        return clf.forward(batch)
    finally:
        layer.forward = pruned


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "int8"])
def test_padded_batches_keep_the_full_layers_logits(tiny, kind, dtype, device):
    if dtype == "int8" and device != "cpu":
        pytest.skip("int8 runs on the CPU only")
    clf = clearpipe.load(tiny(kind, 3), dtype=dtype, device=device)
    assert first_token.installed(clf.model) and clf.device.type == device
    tokenized = clf.tokenize(normalize_inputs(TEXTS).items)
    batch = clf.collate(tokenized, range(len(TEXTS)))
    tol = tolerance(device, TOLERANCE[dtype])
    torch.testing.assert_close(clf.forward(batch), _full_logits(clf, batch), rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_packed_batches_keep_the_full_layers_logits(tiny, kind, dtype):
    clf = clearpipe.load(tiny(kind, 3), dtype=dtype, device="cpu")
    if not can_pack(clf.model):
        pytest.skip("no native bf16 here: the model keeps sdpa attention and pads")
    items = normalize_inputs(TEXTS).items
    tokenized = clf.tokenize(items)
    rng = random.Random(0)
    for _ in range(5):
        rows = [r for r in rng.sample(range(len(items)), k=rng.randint(1, len(items))) if r != 3]
        packed = packing.pack(tokenized, rows, position_offset(clf.model))
        padded = clf.collate(tokenized, rows)
        torch.testing.assert_close(
            clf.runner.forward(packed), _full_logits(clf, padded), rtol=0.02, atol=0.02
        )


@contextlib.contextmanager
def _feed_forward_widths(model: torch.nn.Module) -> Iterator[list[int]]:
    """The positions per row that the last layer's feed-forward block sees, a call each."""
    widths: list[int] = []
    layer = _last_layer(model)
    hook = layer.intermediate.register_forward_hook(lambda _m, inputs, _o: widths.append(inputs[0].shape[1]))
    try:
        yield widths
    finally:
        hook.remove()


def test_the_last_layer_runs_one_token_per_row_and_the_trace_sees_every_token(tiny_bert):
    clf = clearpipe.load(tiny_bert, dtype="float32", device="cpu")
    with _feed_forward_widths(clf.model) as widths:
        clf(["a good film with great actors", "bad"])
        assert widths == [1]  # the feed-forward block saw the first token of each row only
        widths.clear()
        trace = clf.trace("a good film with great actors", attributions=False)
    tokens = len(trace.tokenizer.tokens)
    assert widths == [tokens]  # the trace runs the whole layer and records every position
    assert list(trace.model.layers[-1].shape)[1] == tokens


def test_copies_compute_with_their_own_last_layer(tiny_bert):
    clf = clearpipe.load(tiny_bert, dtype="float32", device="cpu")
    copied = copy.deepcopy(clf.model)
    assert first_token.installed(copied)
    assert _last_layer(copied).forward.layer is _last_layer(copied)
    with torch.no_grad():
        for p in _last_layer(copied).parameters():
            p.zero_()
    batch = clf.collate(clf.tokenize(["a good film"]), [0])
    # Were the copy's forward bound to the original layer, both would still answer alike.
    assert not torch.equal(Runner.of(copied, clf.device).forward(batch), clf.forward(batch))


def test_the_model_still_pickles_with_its_first_token_layer(tiny_bert):
    clf = clearpipe.load(tiny_bert, dtype="float32", device="cpu")
    buffer = io.BytesIO()
    torch.save(clf.model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    assert first_token.installed(loaded) and _last_layer(loaded).forward.layer is _last_layer(loaded)
    batch = clf.collate(clf.tokenize(["a good film"]), [0])
    torch.testing.assert_close(
        Runner.of(loaded, clf.device).forward(batch), clf.forward(batch), rtol=0, atol=0
    )


def test_only_models_whose_head_reads_the_first_token_in_inference(tiny):
    clf = clearpipe.load(tiny("bert", 2), dtype="float32", device="cpu")
    model = copy.deepcopy(clf.model)
    del _last_layer(model).forward
    model.train()
    assert not first_token.install(model) and not first_token.installed(model)
    model.eval()
    model.config._attn_implementation = "flash_attention_2"  # variable-length masks: left alone
    assert not first_token.install(model)
    assert not first_token.install(torch.nn.Linear(2, 2))


def test_an_attention_switched_after_load_runs_the_layer_whole(tiny):
    # An implementation first_token does not know (here eager's function under another name)
    # may take masks it cannot slice: the layer then runs whole and hands back the first tokens.
    from transformers import AttentionInterface
    from transformers.models.bert.modeling_bert import eager_attention_forward

    AttentionInterface.register("clearpipe_test_unknown", eager_attention_forward)
    clf = clearpipe.load(tiny("bert", 3), dtype="float32", device="cpu")
    tokenized = clf.tokenize(normalize_inputs(TEXTS).items)
    batch = clf.collate(tokenized, range(len(TEXTS)))
    clf.model.set_attn_implementation("clearpipe_test_unknown")
    assert first_token.installed(clf.model)
    with _feed_forward_widths(clf.model) as widths:
        got = clf.forward(batch)
    assert widths == [batch.input_ids.shape[1]]  # every position went through the layer
    torch.testing.assert_close(got, _full_logits(clf, batch), rtol=0, atol=0)
