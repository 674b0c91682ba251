"""clearpipe.engine.prepacked: linear layers on oneDNN-laid-out weights, checked against `nn.Linear`."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from transformers import AutoModelForSequenceClassification

import clearpipe
from clearpipe.engine import linears, prepacked

pytestmark = pytest.mark.skipif(not prepacked.available(), reason="this PyTorch build has no oneDNN linear")

TEXTS = ["the film was good", "bad", "a very very boring plot with awful scenes and bad actors"]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 24), (2, 7, 24), (0, 24)])
def test_it_computes_what_nn_linear_computes(bias, shape):
    torch.manual_seed(0)
    linear = torch.nn.Linear(24, 40, bias=bias)
    layer = prepacked.PrepackedLinear(linear)
    bf16 = torch.nn.Linear(24, 40, bias=bias).to(torch.bfloat16)
    bf16_layer = prepacked.PrepackedLinear(bf16)
    x = torch.randn(*shape)
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), linear(x), rtol=1e-5, atol=1e-5)
        if prepacked.cpu.packs_bf16():  # else prepack_model never makes a bf16 PrepackedLinear (below)
            # The same bf16 product up to one bf16 rounding (assert_close's bf16 tolerance): on
            # CPUs with AVX-512 BF16 the two calls reach the same oneDNN kernel and agree to the
            # bit, but without it nn.Linear takes another bf16 kernel, whose sums may round the
            # other way.
            torch.testing.assert_close(bf16_layer(x.bfloat16()), bf16(x.bfloat16()))


def test_weights_made_under_inference_mode_are_packed_too():
    with torch.inference_mode():
        linear = torch.nn.Linear(6, 2)
        x = torch.randn(3, 6)
        torch.testing.assert_close(prepacked.PrepackedLinear(linear)(x), linear(x), rtol=1e-5, atol=1e-5)


def test_it_keeps_its_parameters_and_trains_like_a_linear_layer():
    torch.manual_seed(0)
    layer = prepacked.PrepackedLinear(torch.nn.Linear(8, 3))
    assert list(layer.state_dict()) == ["weight", "bias"]
    x = torch.randn(4, 8)
    with torch.inference_mode():
        before = layer(x)
    torch.optim.SGD(layer.parameters(), lr=0.5).zero_grad()
    layer(x).square().sum().backward()  # gradients flow: F.linear runs when they are needed
    assert layer.weight.grad is not None
    with torch.no_grad():
        layer.weight.add_(1.0)  # an in-place write, as an optimizer step makes
    with torch.inference_mode():
        after = layer(x)
    assert not torch.allclose(after, before)  # the packed copy followed the new weight
    expected = torch.nn.functional.linear(x, layer.weight.detach(), layer.bias.detach())
    torch.testing.assert_close(after, expected, rtol=1e-5, atol=1e-5)


def test_copies_and_pickles_pack_their_own_weights():
    layer = prepacked.PrepackedLinear(torch.nn.Linear(8, 3))
    x = torch.randn(2, 8)
    clone = copy.deepcopy(layer)
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    with torch.inference_mode():
        for other in (clone, loaded):
            assert other.weight is not layer.weight
            torch.testing.assert_close(other(x), layer(x))


def test_restore_gives_back_plain_layers_on_the_same_parameters(monkeypatch):
    monkeypatch.setattr(prepacked, "_pays", lambda dtype: True)  # as on an AVX-512 CPU
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    weights = [model[0].weight, model[2].weight]
    assert prepacked.prepack_model(model)
    assert all(isinstance(model[i], prepacked.PrepackedLinear) for i in (0, 2))
    linears.restore(model)
    assert all(type(model[i]) is torch.nn.Linear for i in (0, 2))
    assert [model[0].weight, model[2].weight] == weights


def test_only_float32_and_bf16_cpu_models_are_prepacked(monkeypatch):
    assert not prepacked.prepack_model(torch.nn.Sequential(torch.nn.Linear(4, 2).half()))
    assert not prepacked.prepack_model(torch.nn.Sequential(torch.nn.ReLU()))
    monkeypatch.setattr(prepacked, "available", lambda: False)
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    assert not prepacked.prepack_model(model) and type(model[0]) is torch.nn.Linear


def test_without_avx512_models_keep_plain_layers(monkeypatch):
    # AMD Zen 3 and other CPUs without AVX-512: oneDNN's bf16 reorder raises "bf16 path needs the
    # cpu support ..." (the model runs PyTorch's bf16 linear), and its AVX2 float32 kernel lost to
    # MKL's, so neither dtype is packed.
    monkeypatch.setattr(prepacked.cpu, "flags", lambda: frozenset({"avx2", "fma", "f16c"}))
    assert not prepacked.cpu.packs_bf16() and not prepacked.cpu.avx512()
    for dtype in (torch.bfloat16, torch.float32):
        model = torch.nn.Sequential(torch.nn.Linear(4, 2).to(dtype))
        assert not prepacked.prepack_model(model) and type(model[0]) is torch.nn.Linear
    monkeypatch.setattr(prepacked.cpu, "flags", lambda: frozenset({"avx2", "avx_ne_convert"}))
    assert prepacked.cpu.packs_bf16() and not prepacked.cpu.avx512()
    avx512 = frozenset({"avx2", "avx512f", "avx512bw", "avx512vl", "avx512dq"})
    monkeypatch.setattr(prepacked.cpu, "flags", lambda: avx512)
    assert prepacked.cpu.packs_bf16() and prepacked.cpu.avx512()
    for dtype in (torch.bfloat16, torch.float32):
        assert prepacked.prepack_model(torch.nn.Sequential(torch.nn.Linear(4, 2).to(dtype)))


def test_a_bf16_classifier_runs_on_any_cpu(tiny):
    # Loading in bf16 and classifying works whatever the CPU (on AVX2-only ones, through
    # PyTorch's bf16 kernels), with float32's scores up to bf16's rounding.
    folder = tiny("bert", 2)
    scores = {}
    for dtype in ("bfloat16", "float32"):
        answers = clearpipe.load(folder, dtype=dtype, device="cpu")(TEXTS, top_k=None)
        scores[dtype] = [sorted((x["label"], x["score"]) for x in one) for one in answers]
    for got, expected in zip(scores["bfloat16"], scores["float32"], strict=True):
        assert [label for label, _ in got] == [label for label, _ in expected]
        assert [score for _, score in got] == pytest.approx([score for _, score in expected], abs=0.03)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_a_loaded_classifier_runs_prepacked_and_still_saves_a_plain_checkpoint(tiny, tmp_path, dtype):
    if not prepacked.cpu.avx512():
        pytest.skip("no AVX-512 on this CPU: models keep plain linear layers")
    folder = tiny("bert", 2)
    clf = clearpipe.load(folder, dtype=dtype, device="cpu")
    assert any(isinstance(m, prepacked.PrepackedLinear) for m in clf.model.modules())
    clf.model.save_pretrained(tmp_path / "saved")
    reloaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved", dtype=torch.float32)
    original = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32)
    for (name, a), (_, b) in zip(reloaded.state_dict().items(), original.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0.01 if dtype == "bfloat16" else 0, msg=name)


def test_weights_are_packed_by_the_first_forward_pass_not_at_load():
    # Packing at load would run OpenMP work on the loading thread, which slowed a server that
    # runs the model on another thread (see PrepackedLinear._current).
    layer = prepacked.PrepackedLinear(torch.nn.Linear(8, 3))
    assert layer._packed is None
    with torch.inference_mode():
        layer(torch.randn(2, 8))
    assert layer._packed is not None
