"""Normalize what users pass to a classifier into one list of texts or text pairs.

Accepted: a string; a `(text, text_pair)` tuple; a `{"text": ..., "text_pair": ...}` dict;
or a list of any of these (inside a list, a two-string list is a pair too, which is how JSON
clients send pairs). A single item in gives a single result out; a list in gives a list out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from clearpipe.errors import InputError

TextInput = str | tuple[str, str]
"""One classifier input: a text, or a `(text, text_pair)` pair."""

# Models whose position ids start after the padding index lose two positions.
OFFSET_POSITION_MODELS = {"roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text"}


def longest_input(model_type: str | None, max_positions: int | None, tokenizer_limit: float | None) -> int:
    """The longest input, in tokens, a model takes: its position embeddings (512 when the config
    has none; RoBERTa-style models lose two to their padding offset), or its tokenizer's limit
    where that is lower. Tokenizers without a limit report a huge sentinel, which is ignored.
    Torch-free, for `clearpipe.loading` and `clearpipe.lite` alike.

    >>> longest_input("roberta", 514, 1e30)
    512
    """
    limit = max_positions or 512
    if model_type in OFFSET_POSITION_MODELS:
        limit -= 2
    return min(limit, int(tokenizer_limit)) if tokenizer_limit and tokenizer_limit < 1_000_000 else limit


CHARS_PER_TOKEN = 256
"""Characters per token of `max_length` worth tokenizing when a text is truncated anyway. A fast
tokenizer splits the whole text before it truncates and keeps the overflow: a 50 MB cell took
7.9 GB of memory to classify 64 tokens of. No real text averages 256 characters a token, so the
kept tokens are the same (the row is still flagged truncated by the tokenizer)."""


def cut(item: TextInput, max_length: int) -> TextInput:
    """`item` with each text cut to `max_length` x `CHARS_PER_TOKEN` characters, before tokenizing
    a text that truncation will cut anyway; offsets into the cut text index the original too.

    >>> cut(("a long premise", "a hypothesis"), 0)
    ('', '')
    >>> cut("short", 128)
    'short'
    """
    limit = max_length * CHARS_PER_TOKEN
    if isinstance(item, str):
        return item[:limit]
    return (item[0][:limit], item[1][:limit])


@dataclass(frozen=True)
class Batch:
    """The inputs of one call, flattened, and whether the caller passed a single item."""

    items: list[TextInput]
    single: bool


def normalize_inputs(inputs: object) -> Batch:
    """Turn any accepted input shape into a `Batch`, or raise `InputError` naming the bad item.

    >>> normalize_inputs("great film")
    Batch(items=['great film'], single=True)
    >>> normalize_inputs([("a premise", "a hypothesis"), "plain"]).items
    [('a premise', 'a hypothesis'), 'plain']
    """
    if isinstance(inputs, str | Mapping | tuple):
        return Batch([_one(inputs, index=None, in_list=False)], single=True)
    if inputs is None or isinstance(inputs, bytes) or not isinstance(inputs, Iterable):
        raise InputError(f"expected a string or a list of strings, got {_kind(inputs)}")
    return Batch([_one(item, index=i, in_list=True) for i, item in enumerate(inputs)], single=False)


def _one(item: object, index: int | None, in_list: bool) -> TextInput:
    if isinstance(item, str):
        return _valid(item, index)
    if isinstance(item, Mapping):
        return _from_mapping(item, index)
    is_pair_shape = isinstance(item, tuple) or (in_list and isinstance(item, list))
    if is_pair_shape and len(item) == 2 and all(isinstance(x, str) for x in item):
        return (_valid(item[0], index), _valid(item[1], index))
    raise InputError(
        f"{_at(index)} is {_kind(item)}: expected a string, a (text, text_pair) pair "
        'or {"text": ..., "text_pair": ...}'
    )


def _from_mapping(item: Mapping, index: int | None) -> TextInput:
    unknown = set(item) - {"text", "text_pair"}
    if unknown or "text" not in item:
        raise InputError(
            f'{_at(index)} must have a "text" key and optionally "text_pair"; got keys {sorted(map(str, item))}'
        )
    text, pair = item["text"], item.get("text_pair")
    if not isinstance(text, str):
        raise InputError(f'{_at(index)} field "text" is {_kind(text)}: expected a string')
    if pair is None:
        return _valid(text, index)
    if not isinstance(pair, str):
        raise InputError(f'{_at(index)} field "text_pair" is {_kind(pair)}: expected a string')
    return (_valid(text, index), _valid(pair, index))


def _valid(text: str, index: int | None) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Lone surrogates ("\ud800", which JSON and Python strings allow) reach no tokenizer.
        raise InputError(
            f"{_at(index)} is not valid Unicode: unpaired surrogate at character {exc.start}"
        ) from None
    return text


def _at(index: int | None) -> str:
    return "the input" if index is None else f"input {index}"


def _kind(value: object) -> str:
    return "None" if value is None else f"a {type(value).__name__}"
