"""Stage 1 for named entities: texts (or pre-split words) -> each input's whole token sequence,
cut into overlapping model windows, and the windows' per-token logits put back together.

Nothing is truncated. A text longer than `max_length` tokens becomes several rows (windows of
`max_length` tokens, special tokens included, overlapping by `stride` tokens); every window is a
row for the engine's loop (`engine.loop.run_tokens`), and `merge` gives each token the logits of
the window in which it sits farthest from an edge, so that stage 3 aggregates one token sequence
per input and an entity near a window border is found once. A text that fits one window is one row,
exactly as transformers' pipeline tokenizes it. The torch-free half (`Spans`, the cutting and
`merge`) is `spans`, which `clearpipe.lite` shares; this module is the transformers tokenizer's.

Offsets index `Spans.text`: the input text itself, or for pre-split input (`is_split_into_words`)
the words joined by single spaces, as transformers' pipeline does. A token whose offsets start on
whitespace (byte-level BPE tokenizers without `trim_offsets` include a word's leading space) starts
at the first character after it, so `start` points at the word.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import PreTrainedTokenizerBase

from clearpipe.entities.spans import (  # noqa: F401  (check_inputs, merge, Spans, TokenWindows: re-exported)
    Spans,
    TokenWindows,
    Words,
    check_inputs,
    cut_windows,
    joined,
    merge,
    offset,
)
from clearpipe.errors import InputError
from clearpipe.loading import quiet_transformers


def spans(
    tokenizer: PreTrainedTokenizerBase,
    inputs: Sequence[str] | Sequence[Words],
    is_split_into_words: bool,
    use_token_type_ids: bool,
) -> tuple[list[Spans], list[list[int]] | None]:
    """Tokenize every input whole (no truncation) with offsets, special-token masks and word ids;
    also the token type ids when the model takes them.

    >>> spans(tokenizer, ["Ada Lovelace"], False, True)[0][0].tokens  # doctest: +SKIP
    ['[CLS]', 'ada', 'love', '##lace', '[SEP]']
    """
    if not inputs:
        return [], [] if use_token_type_ids else None
    try:
        with quiet_transformers():  # "longer than the maximum": windows follow
            enc = tokenizer(
                list(inputs) if not is_split_into_words else [list(words) for words in inputs],
                is_split_into_words=is_split_into_words,
                truncation=False,
                return_offsets_mapping=True,
                return_special_tokens_mask=True,
                return_token_type_ids=use_token_type_ids,
                return_attention_mask=False,
            )
    except (ValueError, TypeError) as exc:  # e.g. a byte-level BPE without add_prefix_space for words
        raise InputError(f"cannot tokenize the inputs: {exc}") from None
    out = []
    for row, item in enumerate(inputs):
        text, starts = joined(item) if is_split_into_words else (item, None)
        words = enc.word_ids(row)
        pairs = enc["offset_mapping"][row]
        if starts is None:  # a text: most tokens start on a character that is no space
            offsets = [
                pair if pair[0] >= pair[1] or not text[pair[0]].isspace() else offset(text, *pair, None)
                for pair in map(tuple, pairs)
            ]
        else:
            offsets = [
                offset(text, start, end, None if word is None else starts[word])
                for (start, end), word in zip(pairs, words, strict=True)
            ]
        ids = enc["input_ids"][row]
        out.append(
            Spans(
                text=text,
                ids=ids,
                tokens=tokenizer.convert_ids_to_tokens(ids),
                offsets=offsets,
                special=[bool(flag) for flag in enc["special_tokens_mask"][row]],
                words=words,
            )
        )
    return out, enc["token_type_ids"] if use_token_type_ids else None


def windows(
    tokenizer: PreTrainedTokenizerBase,
    inputs: Sequence[str] | Sequence[Words],
    is_split_into_words: bool,
    use_token_type_ids: bool,
    max_length: int,
    stride: int,
) -> TokenWindows:
    """Tokenize `inputs` whole and cut each into windows of at most `max_length` tokens that
    overlap by `stride` tokens (at most half a window), each with the input's special tokens.

    >>> windows(tokenizer, ["word " * 300], False, True, 128, 32).owner  # doctest: +SKIP
    [0, 0, 0]
    """
    found, types = spans(tokenizer, inputs, is_split_into_words, use_token_type_ids)
    return cut_windows(found, types, max_length, stride)
