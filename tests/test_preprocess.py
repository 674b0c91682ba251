"""Stage 1's padding: `collate` against the tokenizer's own padding, as the oracle."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clearpipe
from clearpipe.inputs import CHARS_PER_TOKEN
from clearpipe.preprocess import collate

words = st.sampled_from(["the", "film", "was", "good", "bad", "a", "plot", "!", "unbelievably", "x"])
texts = st.lists(st.lists(words, max_size=12).map(" ".join), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def clf(tiny):
    return clearpipe.load(tiny("bert", 2), dtype="float32")


@pytest.mark.parametrize("side", ["right", "left"])
def test_collate_pads_like_the_tokenizer(clf, side):
    @settings(max_examples=40, deadline=None)
    @given(texts, st.randoms(use_true_random=False))
    def check(batch, rng):
        rows = list(range(len(batch)))
        rng.shuffle(rows)  # any subset order, as the engine's length-sorted batches use
        encoded = collate(clf.tokenize(batch), rows, clf.tokenizer.pad_token_id, side)
        expected = clf.tokenizer(
            [batch[r] for r in rows],
            padding=True,
            padding_side=side,
            truncation=True,  # as clf.tokenize does, at the classifier's max length
            max_length=clf.settings.max_length,
            return_tensors="pt",
        )
        assert encoded.input_ids.tolist() == expected["input_ids"].tolist()
        assert encoded.attention_mask.tolist() == expected["attention_mask"].tolist()
        assert encoded.token_type_ids.tolist() == expected["token_type_ids"].tolist()
        assert encoded.lengths == [int(n) for n in expected["attention_mask"].sum(1)]

    check()


def test_collate_of_no_rows_is_empty(clf):
    encoded = collate(clf.tokenize(["fine"]), [], clf.tokenizer.pad_token_id)
    assert tuple(encoded.input_ids.shape) == (0, 0) and encoded.lengths == []


def test_a_huge_text_is_cut_before_the_tokenizer_splits_it_all(tiny):
    # A fast tokenizer splits all of a text before truncating and keeps the overflow: a 50 MB cell
    # once took 7.9 GB. Cut first, the overflow is bounded by max_length x CHARS_PER_TOKEN.
    clf = clearpipe.load(tiny("bert", 2), max_length=16)
    huge = "a fine film " * 100_000  # 1.2 M characters, about 300 k tokens
    tokenized = clf.tokenize([huge, (huge, "short")], keep_encodings=True)
    for encoding in tokenized.encodings:
        overflow = sum(len(o.ids) for o in encoding.overflowing)
        assert overflow < 16 * CHARS_PER_TOKEN
    assert tokenized.truncated == [True, True]
    assert tokenized.input_ids[0] == clf.tokenize(["a fine film " * 20]).input_ids[0]
