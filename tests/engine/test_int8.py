"""clearpipe.engine.int8: per-token int8 linear layers, checked against float32 `nn.Linear` and transformers."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoModelForSequenceClassification

import clearpipe
from clearpipe.engine import int8, precision

pytestmark = pytest.mark.skipif(not int8.available(), reason="this PyTorch build has no oneDNN int8 kernels")

TEXTS = ["the film was good", "bad", "a very very boring plot with awful scenes and bad actors", "fun"]
rows = st.lists(
    st.lists(st.floats(-1e4, 1e4, allow_nan=False, width=32), min_size=3, max_size=3), min_size=1, max_size=5
)


@settings(max_examples=50, deadline=None)
@given(rows)
def test_quantize_rows_round_trips_within_half_a_step(values):
    x = torch.tensor(values)
    q, scale = int8.quantize_rows(x)
    assert q.dtype == torch.uint8 and scale.shape == (x.shape[0], 1)
    assert int(q.min()) >= 1 and int(q.max()) <= 255  # symmetric: -127..127 around 128
    back = (q.float() - 128) * scale
    assert torch.all((back - x).abs() <= scale / 2 + 1e-6 * x.abs())


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
    return (got - want).norm(dim=-1) / want.norm(dim=-1)


@pytest.mark.parametrize("bias", [True, False])
def test_int8_linear_matches_float_linear(bias):
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48, bias=bias)
    x = torch.randn(2, 5, 64)  # (batch, seq, features): any leading shape
    with torch.inference_mode():
        got = int8.Int8Linear(linear, torch.float32)(x)
        want = linear(x)
    assert got.shape == want.shape == (2, 5, 48)
    assert float(_relative_error(got, want).max()) < 0.02


@pytest.mark.parametrize("dot_products", [True, False])
def test_weights_keep_within_the_levels_this_cpus_kernels_sum_without_overflow(monkeypatch, dot_products):
    # Without VNNI or AMX, oneDNN adds u8 x s8 products pairwise into a saturating int16: weights
    # of up to 127 levels overflowed it on a Zen 3 (33% off float32), so they keep to 64 there.
    this_cpu = int8.cpu.int8_dot_products()
    monkeypatch.setattr(int8.cpu, "int8_dot_products", lambda: dot_products)
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    layer = int8.Int8Linear(linear, torch.float32)
    assert int(layer.quantized.abs().max()) == (127 if dot_products else 64)
    x = torch.randn(6, 64)
    with torch.inference_mode():
        error = float(_relative_error(layer(x), linear(x)).max())
    if this_cpu or not dot_products:  # what this CPU would run: close to float32
        assert error < 0.03


def test_each_token_gets_its_own_scale():
    # One loud token next to a quiet one: a single scale for the batch (PyTorch's dynamic
    # quantization) rounds the quiet token to almost nothing; per-token scales keep it.
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 32, bias=False)
    x = torch.randn(2, 64)
    x[0] *= 1000
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notice
        per_batch_linear = torch.ao.nn.quantized.dynamic.Linear.from_float(_with_qconfig(linear))
        per_token = _relative_error(int8.Int8Linear(linear, torch.float32)(x), linear(x))
        per_batch = _relative_error(per_batch_linear(x), linear(x))
    assert float(per_token[1]) < 0.02
    assert float(per_batch[1]) > 0.1


def _with_qconfig(linear: torch.nn.Linear) -> torch.nn.Linear:
    linear.qconfig = torch.ao.quantization.default_dynamic_qconfig
    return linear


@pytest.mark.parametrize("kind", ["bert", "distilbert", "roberta"])
def test_an_int8_classifier_stays_close_to_transformers_float32(tiny, kind):
    folder = tiny(kind, 3)
    clf = clearpipe.load(folder, dtype="int8", device="cpu")
    linears = [m for m in clf.model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == [] and any(isinstance(m, int8.Int8Linear) for m in clf.model.modules())
    expected_dtype = torch.bfloat16 if precision.cpu_has_native_bf16() else torch.float32
    assert clf.model.dtype == expected_dtype
    oracle = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.float32).eval()
    encoded = clf.preprocess(TEXTS)
    with torch.inference_mode():
        expected = oracle(input_ids=encoded.input_ids, attention_mask=encoded.attention_mask).logits
    torch.testing.assert_close(clf.forward(encoded), expected, rtol=0, atol=0.05)


def test_compiled_and_plain_kernels_agree(monkeypatch):
    torch.manual_seed(0)
    layer = int8.Int8Linear(torch.nn.Linear(32, 16), torch.bfloat16)
    x = torch.randn(int8.COMPILE_FROM_TOKENS, 32, dtype=torch.bfloat16)  # large enough to compile
    with torch.inference_mode():
        compiled = layer(x)
        assert int8._compiled_ok is True
        monkeypatch.setattr(int8, "COMPILE_FROM_TOKENS", 10**9)
        plain = layer(x)
    torch.testing.assert_close(plain.float(), compiled.float(), rtol=0.01, atol=0.01)


def test_without_a_compiler_the_plain_kernels_give_the_same_answers(monkeypatch, caplog):
    torch.manual_seed(0)
    linear = torch.nn.Linear(32, 16)
    x = torch.randn(4, 32)
    compiled = int8.Int8Linear(linear, torch.float32)(x)
    monkeypatch.setattr(int8, "COMPILE_FROM_TOKENS", 0)

    def broken(*_args):
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(int8, "_kernels", lambda: {int8.quantize_rows: broken, int8.rescale: broken})
    monkeypatch.setattr(int8, "_compiled_ok", None)
    with caplog.at_level(logging.WARNING, logger="clearpipe.engine.int8"):
        plain = int8.Int8Linear(linear, torch.float32)(x)
    assert "uncompiled" in caplog.text
    torch.testing.assert_close(plain, compiled, rtol=0, atol=1e-5)


def test_an_int8_classifier_is_traced_with_attributions_from_its_dequantized_weights(tiny):
    clf = clearpipe.load(tiny("bert", 2), dtype="int8", device="cpu")
    trace = clf.trace("the film was good")
    assert trace.prediction.label == clf("the film was good")["label"]
    assert trace.attributions is not None and trace.attributions.completeness.ok
    # the int8 model itself is untouched by the float32 copy made for the gradients
    assert any(isinstance(m, int8.Int8Linear) for m in clf.model.modules())
