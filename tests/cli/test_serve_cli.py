"""`clearpipe serve`'s choices made before the server starts (the server itself: tests/server)."""

from __future__ import annotations

import pytest

import clearpipe
from clearpipe.cli.serve import PADDED_BATCH_SIZE, rows_per_pass


@pytest.mark.parametrize(("dtype", "cap"), [("bfloat16", None), ("float32", PADDED_BATCH_SIZE)])
def test_packed_models_run_a_micro_batch_in_one_pass_and_padded_ones_in_slices(tiny_bert, dtype, cap):
    clf = clearpipe.load(tiny_bert, dtype=dtype, device="cpu")
    assert clf.packs is (dtype == "bfloat16")  # fp32 keeps sdpa, which cannot run packed
    assert rows_per_pass(None, clf.packs) == cap
    assert rows_per_pass(3, clf.packs) == 3  # --batch-size always wins
