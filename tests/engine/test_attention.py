"""clearpipe's CPU attention: the same function as transformers' own, switched on only for bf16/fp16."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import checkpoints
import clearpipe
from clearpipe.engine import attention, precision

TEXTS = ["the film was good", "bad", "a very very boring plot with awful scenes and bad actors", "fun"]


def test_attend_equals_sdpa_with_a_padding_mask():
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 4, 7, 8, dtype=torch.float64) for _ in range(3))
    real = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5], dtype=torch.bool)
    additive = torch.zeros(3, 1, 7, 7, dtype=torch.float64).masked_fill(~real[:, None, None, :], -1e9)
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=real[:, None, None, :])
    out, weights = attention.attend(torch.nn.Module(), q, k, v, additive.float())
    assert weights is None
    assert out.shape == (3, 7, 4, 8)  # (batch, seq, heads, head_dim), as transformers expects
    torch.testing.assert_close(out.transpose(1, 2).double(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", ["bert", "distilbert", "roberta"])
def test_a_bf16_classifier_uses_it_and_matches_transformers_sdpa(tiny, kind):
    folder = tiny(kind, 3)
    clf = clearpipe.load(folder, dtype="bfloat16", device="cpu")
    assert clf.model.config._attn_implementation == attention.NAME
    oracle = AutoModelForSequenceClassification.from_pretrained(folder, dtype=torch.bfloat16)
    oracle.set_attn_implementation("sdpa")
    encoded = clf.preprocess(TEXTS)  # one padded batch: rows of different lengths
    with torch.inference_mode():
        expected = oracle(input_ids=encoded.input_ids, attention_mask=encoded.attention_mask).logits
    torch.testing.assert_close(clf.forward(encoded), expected.float(), rtol=0, atol=3e-2)


def test_each_row_scores_the_same_alone_and_padded_in_a_batch(tiny, tmp_path):
    # Large weights, so that attending to padding would move the scores far.
    folder = checkpoints.make_sensitive(tiny("bert", 3), tmp_path / "sensitive", seed=1)
    clf = clearpipe.load(folder, dtype="bfloat16")
    encoded = clf.preprocess(TEXTS)
    assert int(encoded.attention_mask.sum()) < encoded.attention_mask.numel()  # padded
    batch = clf.forward(encoded)
    alone = torch.cat([clf.forward(clf.preprocess([text])) for text in TEXTS])
    torch.testing.assert_close(batch, alone, rtol=0, atol=0.1)
    assert float((batch - batch.mean(0)).abs().max()) > 1.0  # the rows really differ


def test_float32_keeps_sdpa_and_int8_follows_its_activations(tiny):
    assert clearpipe.load(tiny("bert", 2), dtype="float32").model.config._attn_implementation == "sdpa"
    # int8 runs everything but its linear layers in bf16 where the CPU computes bf16.
    expected = attention.NAME if precision.cpu_has_native_bf16() else "sdpa"
    assert clearpipe.load(tiny("bert", 2), dtype="int8").model.config._attn_implementation == expected


def test_trace_of_a_bf16_classifier_records_attention_and_switches_back(tiny):
    clf = clearpipe.load(tiny("bert", 2), dtype="bfloat16")
    trace = clf.trace("the film was good", attributions=False)
    assert trace.model.attention == "eager"  # weights recorded for the trace's own call
    assert all(layer.first_attends is not None for layer in trace.model.layers)
    assert clf.model.config._attn_implementation == attention.NAME
    assert trace.prediction.label == clf("the film was good")["label"]


def test_a_bf16_model_with_its_own_attention_code_keeps_it(tmp_path):
    # MPNet computes attention itself. The pooled classifier SetFit writes from `--base
    # mpnet-base` accepted the switch, then got a float32 mask for bf16 scores, and its forward
    # failed in bf16, the CPU default: every command failed on such a folder.
    from transformers import MPNetConfig, MPNetModel

    from clearpipe import pooled

    source = checkpoints.build(tmp_path / "bert", "bert")  # its WordPiece tokenizer
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = MPNetConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=80, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    encoder = MPNetModel(config, add_pooling_layer=False)
    model = pooled.from_encoder(encoder, torch.randn(2, 32) * 5, torch.zeros(2), ["neg", "pos"])
    model.save_pretrained(tmp_path / "mpnet")
    tokenizer.save_pretrained(tmp_path / "mpnet")
    clf = clearpipe.load(tmp_path / "mpnet", dtype="bfloat16", device="cpu")
    assert clf.model.config._attn_implementation != attention.NAME
    encoded = clf.preprocess(TEXTS)  # padded rows: the mask is what went wrong
    with torch.inference_mode():
        expected = model(input_ids=encoded.input_ids, attention_mask=encoded.attention_mask).logits
    torch.testing.assert_close(clf.forward(encoded), expected, rtol=3e-2, atol=3e-2)  # bf16 against fp32
