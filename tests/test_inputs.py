import pytest
from hypothesis import given
from hypothesis import strategies as st

from clearpipe.errors import InputError
from clearpipe.inputs import longest_input, normalize_inputs


def test_single_string_is_single():
    batch = normalize_inputs("hello")
    assert batch.items == ["hello"] and batch.single


def test_pair_shapes():
    assert normalize_inputs(("p", "h")).items == [("p", "h")]
    assert normalize_inputs({"text": "p", "text_pair": "h"}).items == [("p", "h")]
    assert normalize_inputs({"text": "p"}).items == ["p"]
    assert normalize_inputs([["p", "h"], ("a", "b"), "c"]).items == [("p", "h"), ("a", "b"), "c"]


def test_empty_list_gives_empty_batch():
    batch = normalize_inputs([])
    assert batch.items == [] and not batch.single


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (None, "got None"),
        (["ok", None], "input 1 is None"),
        (["ok", "fine", 3], "input 2 is a int"),
        ([{"text": 1}], 'input 0 field "text" is a int'),
        ([{"txt": "a"}], 'must have a "text" key'),
        ([("a", "b", "c")], "input 0 is a tuple"),
        (b"bytes", "got a bytes"),
        (["ok", "bad \ud800"], "input 1 is not valid Unicode: unpaired surrogate at character 4"),
        ({"text": "a", "text_pair": "\udfff"}, "the input is not valid Unicode"),
    ],
)
def test_bad_items_are_named(inputs, message):
    with pytest.raises(InputError, match=message):
        normalize_inputs(inputs)


@given(st.lists(st.text() | st.tuples(st.text(), st.text())))
def test_valid_lists_round_trip(items):
    assert normalize_inputs(items).items == items


@given(st.lists(st.one_of(st.integers(), st.none(), st.floats(), st.binary()), min_size=1))
def test_non_text_items_always_raise_input_error(items):
    with pytest.raises(InputError, match="input 0"):
        normalize_inputs(items)


@pytest.mark.parametrize(
    ("model_type", "positions", "tokenizer_limit", "expected"),
    [
        ("bert", 512, 512, 512),
        ("roberta", 514, 1e30, 512),  # position ids start after the padding index
        ("xlm-roberta", 514, None, 512),
        ("bert", 512, 128, 128),  # the tokenizer's own limit, when lower
        ("bert", 512, int(1e30), 512),  # transformers' "no limit" sentinel
        ("distilbert", None, None, 512),  # a config without position embeddings
    ],
)
def test_longest_input_is_the_position_limit_or_the_tokenizers(
    model_type, positions, tokenizer_limit, expected
):
    assert longest_input(model_type, positions, tokenizer_limit) == expected
