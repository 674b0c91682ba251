"""clearpipe.engine.packing: padding-free batches give the padded batches' logits, for every supported model."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import clearpipe
from clearpipe.engine import packing
from clearpipe.engine import run as engine_run
from clearpipe.engine.packed_forward import can_pack, position_offset
from clearpipe.inputs import normalize_inputs
from clearpipe.preprocess import Tokenized

TEXTS = [
    "a good film",
    "bad",
    "a very very boring plot with awful scenes, bad actors and a script that goes nowhere at all",
    "",
    ("the premise", "a hypothesis that is quite a bit longer than the premise"),
    "fun 😀 café",
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 12), min_size=1, max_size=6), st.integers(0, 3))
def test_pack_lays_rows_end_to_end_and_knows_where_each_token_came_from(lengths, offset):
    ids = [[100 * row + i for i in range(n)] for row, n in enumerate(lengths)]
    tokenized = Tokenized(input_ids=ids, token_type_ids=None, truncated=[False] * len(ids))
    rows = list(range(len(ids)))[::-1]  # any order of rows
    packed = packing.pack(tokenized, rows, position_offset=offset)
    flat = packed.input_ids[0].tolist()
    total = sum(lengths)
    # The rows end to end, then filler up to a multiple of ROUND_TOKENS that no row reads.
    assert flat[:total] == [t for r in rows for t in ids[r]] and len(packed) == len(rows)
    assert len(flat) % packing.ROUND_TOKENS == 0 and len(flat) - total < packing.ROUND_TOKENS
    width = max(lengths)
    slots = packed.key_mask.shape[0]  # rows, then filler rows of at most `width` tokens
    assert packed.gather.shape == (slots * width,) and packed.real.shape == (len(flat),)
    gathered = torch.tensor(flat)[packed.gather].view(slots, width)
    # Every position, read back in order, is the packed sequence itself: nothing lost, nothing twice.
    assert gathered.reshape(-1)[packed.real].tolist() == flat
    filler_positions = packed.position_ids[0, total:]
    assert ((filler_positions >= offset) & (filler_positions < offset + width)).all()
    for i, r in enumerate(rows):
        n = len(ids[r])
        assert gathered[i, :n].tolist() == ids[r]
        assert int(packed.starts[i]) == flat.index(ids[r][0])
        assert packed.position_ids[0, packed.starts[i] : packed.starts[i] + n].tolist() == list(
            range(offset, offset + n)
        )
        assert (packed.key_mask[i, 0, 0, n:] < -1e30).all() and (packed.key_mask[i, 0, 0, :n] == 0).all()


def test_should_pack_only_when_padding_costs():
    assert not packing.should_pack([20, 19, 18, 20])
    assert packing.should_pack([60, 10, 12, 15])
    assert not packing.should_pack([])
    assert not packing.should_pack([60, 0, 12])  # a row without tokens has no first token


@pytest.mark.parametrize("kind", ["bert", "distilbert", "roberta"])
@pytest.mark.parametrize("dtype", ["bfloat16", "int8"])
def test_packed_batches_give_the_padded_batches_logits(tiny, kind, dtype):
    clf = clearpipe.load(tiny(kind, 3), dtype=dtype, device="cpu")
    if not can_pack(clf.model):
        pytest.skip("no native bf16 here: the model keeps sdpa attention and pads")
    items = normalize_inputs(TEXTS).items
    tokenized = clf.tokenize(items)
    rng = random.Random(0)
    for _ in range(5):
        rows = rng.sample(range(len(items)), k=rng.randint(1, len(items)))
        padded = clf.forward(clf.collate(tokenized, rows))
        packed = clf.runner.forward(packing.pack(tokenized, rows, position_offset(clf.model)))
        torch.testing.assert_close(packed, padded, rtol=0.02, atol=0.02)


def test_the_engine_packs_batches_that_would_pad_a_lot_and_answers_the_same(tiny, monkeypatch):
    clf = clearpipe.load(tiny("bert", 2), dtype="bfloat16", device="cpu")
    if not can_pack(clf.model):
        pytest.skip("no native bf16 here")
    items = normalize_inputs(TEXTS).items
    tokenized = clf.tokenize(items)
    made = []
    batch = engine_run.Runner.batch

    def spy(runner, tok, rows):
        made.append(type(out := batch(runner, tok, rows)).__name__)
        return out

    monkeypatch.setattr(engine_run.Runner, "batch", spy)
    got = clf.logits(tokenized)
    assert "Packed" in made and "Encoded" not in made
    made.clear()
    clf.runner = dataclasses.replace(clf.runner, pack_offset=None)  # as a model that cannot pack
    np.testing.assert_allclose(got, clf.logits(tokenized), atol=0.02)
    assert made and set(made) == {"Encoded"}


def test_float32_models_pad_and_refuse_packed_batches(tiny):
    clf = clearpipe.load(tiny("bert", 2), dtype="float32", device="cpu")
    assert not can_pack(clf.model)
    tokenized = clf.tokenize(["a", "a much longer text than the other one"])
    with pytest.raises(ValueError, match="cannot run a packed batch"):
        clf.runner.forward(packing.pack(tokenized, [0, 1]))
