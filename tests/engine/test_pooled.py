"""Pooled sentence embeddings through the engine's loop: the same numbers as mean pooling one text
at a time with plain transformers, whatever the batches."""

from __future__ import annotations

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer

from checkpoints import MIXED_TEXTS as TEXTS
from clearpipe.engine import loop
from clearpipe.engine.run import PooledRunner
from clearpipe.preprocess import tokenize


def test_pooled_rows_equal_mean_pooling_one_text_at_a_time(tiny):
    folder = tiny("bert", 2)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoder = AutoModel.from_pretrained(folder).eval()
    items = TEXTS[:12]
    tokenized = tokenize(tokenizer, items, 64, use_token_type_ids=True)
    runner = PooledRunner(encoder, torch.device("cpu"), (0, -1), tokenizer.pad_token_id)
    got = loop.run(tokenized, runner, loop.Budget(max_tokens=48))  # several batches, each padded
    assert got.shape == (len(items), 2 * encoder.config.hidden_size)
    for row, text in enumerate(items):
        one = tokenizer(text, return_tensors="pt", truncation=True, max_length=64)
        with torch.no_grad():
            states = encoder(**one, output_hidden_states=True).hidden_states
        expected = torch.cat([states[0].mean(dim=1), states[-1].mean(dim=1)], dim=1)[0].numpy()
        np.testing.assert_allclose(got[row], expected, atol=1e-5)
