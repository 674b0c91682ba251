"""`embed` is mean pooling over real tokens, normalized: checked against transformers by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from clearpipe.zeroshot import load_embedder

TEXTS = [
    "a good film",
    "the plot was boring and the actors were awful , not fun at all",
    "love",
    "this movie is the best movie ever , really very funny and the story is great",
    "",
    "the team lost the game",
    "stock price of the company",
]


def by_hand(folder, texts, max_length):
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state  # (B, T, H)
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (states * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=1).numpy()


@pytest.mark.parametrize(("max_tokens", "batch_size"), [(None, None), (24, None), (64, 2), (4096, 1)])
def test_embed_is_normalized_mean_pooling(tiny_encoder, max_tokens, batch_size):
    embedder = load_embedder(
        tiny_encoder, device="cpu", dtype="float32", max_tokens=max_tokens, batch_size=batch_size
    )
    got = embedder.embed(TEXTS)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), embedder.width)
    np.testing.assert_allclose(got, by_hand(tiny_encoder, TEXTS, embedder.max_length), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_truncated_texts_pool_only_their_kept_tokens(tiny_encoder):
    embedder = load_embedder(tiny_encoder, device="cpu", dtype="float32", max_length=6)
    np.testing.assert_allclose(embedder.embed(TEXTS), by_hand(tiny_encoder, TEXTS, 6), atol=1e-5)


def test_no_texts_give_an_empty_matrix(tiny_encoder):
    embedder = load_embedder(tiny_encoder, device="cpu", dtype="float32")
    assert embedder.embed([]).shape == (0, embedder.width)


def test_the_default_encoder_is_minilm_with_its_trained_length(minilm_dir):
    embedder = load_embedder(dtype="float32")
    assert embedder.source == str(minilm_dir)
    assert embedder.max_length == 256 and embedder.width == 384
    cat, kitten, market = embedder.embed(["a cat", "a kitten", "the stock market fell"])
    assert cat @ kitten > cat @ market
