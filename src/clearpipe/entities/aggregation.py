"""Stage 3 for named entities: per-token logits -> probabilities -> tokens -> words -> entities.

The strategies are transformers' `TokenClassificationPipeline` ones, with its meanings and its
arithmetic (the parity tests compare them on tiny checkpoints):

- "none": every token that is not special, with its best label (`{"entity", "score", "index", ...}`);
- "simple": adjacent tokens with the same type grouped (B- starts a new group), words may split;
- "first" / "average" / "max": first tokens' label, probabilities averaged, or the most confident
  token, per word; a word is a token and its sub-tokens ("##" for WordPiece; for tokenizers without
  a sub-token prefix, such as byte-level BPE, a token not preceded by a space);
- "word", clearpipe's default: "first" on the words the fast tokenizer itself split the text into
  (its word ids), so no word is ever split across types and punctuation is its own word (BPE's
  "Paris," is "Paris" and ","); `word` is then the text itself, `text[start:end]`.

Grouped results are `{"entity_group", "score", "word", "start", "end"}`; labels in `ignore_labels`
(default "O") are dropped after grouping. `aggregate` also says which tokens made each word and
entity (`Aggregated`), for `clearpipe trace`. Torch-free: `clearpipe.lite` runs the same stage 3.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from clearpipe.entities.spans import Spans
from clearpipe.errors import InputError

STRATEGIES = ("none", "simple", "first", "average", "max", "word")
DEFAULT_STRATEGY = "word"
WORD_STRATEGIES = ("first", "average", "max", "word")

Decode = Callable[[list[str]], str]
"""The tokenizer's `convert_tokens_to_string`: token strings -> the word they spell."""


def cached(decode: Decode, size: int = 1 << 16) -> Decode:
    """`decode` remembering its last `size` answers: the word strategies decode every word, and
    most words of a corpus are words seen before (the decoder is a pure function of its tokens).

    >>> calls = []
    >>> spell = cached(lambda tokens: calls.append(tokens) or "".join(tokens))
    >>> spell(["ada", "##m"]), spell(["ada", "##m"]), len(calls)
    ('ada##m', 'ada##m', 1)
    """

    @functools.lru_cache(maxsize=size)
    def spelled(tokens: tuple[str, ...]) -> str:
        return decode(list(tokens))

    return lambda tokens: spelled(tuple(tokens))


@dataclass(frozen=True)
class Aggregation:
    """How stage 3 turns one input's token probabilities into entities.

    `labels` in label-id order; `word_aware`: the tokenizer marks sub-tokens (a WordPiece "##"),
    else transformers' space heuristic finds words; `unk_id`: the unknown token, whose word is the
    text it covers; `decode`: the tokenizer's `convert_tokens_to_string`, wrapped by `cached`.
    """

    labels: Sequence[str]
    word_aware: bool
    unk_id: int | None
    decode: Decode


@dataclass(frozen=True)
class Entity:
    """One result: a token ("none", with its `index`) or a group of them (`index` None)."""

    label: str
    score: float
    word: str
    start: int
    end: int
    index: int | None = None

    def to_dict(self) -> dict[str, object]:
        """transformers' shape: `entity` and `index` for tokens, `entity_group` for groups."""
        if self.index is not None:
            return {
                "entity": self.label,
                "score": self.score,
                "index": self.index,
                "word": self.word,
                "start": self.start,
                "end": self.end,
            }
        return {
            "entity_group": self.label,
            "score": self.score,
            "word": self.word,
            "start": self.start,
            "end": self.end,
        }


@dataclass(frozen=True)
class _Piece:
    """A token (then a word) on its way to an entity: transformers' "pre-entity"."""

    word: str
    scores: np.ndarray
    start: int
    end: int
    index: int
    is_subword: bool


@dataclass(frozen=True)
class Tagged:
    """A token ("none", "simple") or a word (the word strategies) with its best label, before
    grouping: `tokens` are the indices of the tokens it is made of, `index` a lone token's."""

    label: str
    score: float
    word: str
    start: int
    end: int
    index: int | None
    tokens: tuple[int, ...]


@dataclass(frozen=True)
class Aggregated:
    """Stage 3 for one input, step by step: the probabilities (tokens, labels), the tagged tokens
    or words (`units`), and the entities kept after `ignore_labels` with the token indices each
    was grouped from (`members`, parallel to `entities`)."""

    strategy: str
    scores: np.ndarray
    units: list[Tagged]
    entities: list[Entity]
    members: list[tuple[int, ...]]


def check_strategy(strategy: str) -> str:
    """The strategy name, lower-cased, or an `InputError` listing the known ones.

    >>> check_strategy("SIMPLE")
    'simple'
    """
    name = str(strategy).lower()
    if name not in STRATEGIES:
        raise InputError(f"unknown aggregation_strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    return name


def softmax(logits: np.ndarray) -> np.ndarray:
    """Per-token probabilities (tokens, labels) in float32, with transformers' arithmetic.

    >>> softmax(np.zeros((1, 2), np.float32)).tolist()
    [[0.5, 0.5]]
    """
    logits = np.asarray(logits, dtype=np.float32)
    shifted = np.exp(logits - np.max(logits, axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def entities(
    spans: Spans, scores: np.ndarray, how: Aggregation, strategy: str, ignore_labels: Sequence[str]
) -> list[Entity]:
    """Stage 3 for one input: token probabilities (tokens, labels) -> its entities, in text order.

    >>> entities(spans, softmax(logits), how, "simple", ["O"])  # doctest: +SKIP
    [Entity(label='PER', score=0.98, word='ada lovelace', start=0, end=12)]
    """
    return aggregate(spans, scores, how, strategy, ignore_labels).entities


def aggregate(
    spans: Spans, scores: np.ndarray, how: Aggregation, strategy: str, ignore_labels: Sequence[str]
) -> Aggregated:
    """`entities`, keeping each step: which tokens made each word and each entity.

    >>> aggregate(spans, softmax(logits), how, "word", ["O"]).members  # doctest: +SKIP
    [(1, 2, 3)]
    """
    pieces = _pieces(spans, scores, how, strategy)
    if strategy in ("none", "simple"):
        tagged = [_best(piece, how.labels) for piece in pieces]
    else:
        tagged = [_word(group, how, strategy, spans.text) for group in _words(pieces)]
    ignored = set(ignore_labels)
    found = (
        [(Entity(t.label, t.score, t.word, t.start, t.end, t.index), t.tokens) for t in tagged]
        if strategy == "none"
        else _group(tagged, how.decode, spans.text if strategy == "word" else None, ignored)
    )
    kept = [(entity, tokens) for entity, tokens in found if entity.label not in ignored]
    return Aggregated(
        strategy, scores, tagged, [entity for entity, _ in kept], [tokens for _, tokens in kept]
    )


def _pieces(spans: Spans, scores: np.ndarray, how: Aggregation, strategy: str) -> list[_Piece]:
    """Non-special tokens with their probabilities and whether each continues a word
    (transformers' `gather_pre_entities`; "word" asks the tokenizer's word ids)."""
    out = []
    previous_word: int | None = None
    for index, token_scores in enumerate(scores):
        if spans.special[index]:
            continue
        start, end = spans.offsets[index]
        word, reference = spans.tokens[index], spans.text[start:end]
        if strategy == "word":
            is_subword = spans.words[index] is not None and spans.words[index] == previous_word
            previous_word = spans.words[index]
        elif how.word_aware:
            is_subword = len(word) != len(reference)
        else:
            is_subword = start > 0 and " " not in spans.text[start - 1 : start + 1]
        if spans.ids[index] == how.unk_id:
            word = reference
            is_subword = is_subword if strategy == "word" else False
        out.append(_Piece(word, token_scores, start, end, index, is_subword))
    return out


def _best(piece: _Piece, labels: Sequence[str]) -> Tagged:
    best = int(piece.scores.argmax())
    return Tagged(
        labels[best],
        float(piece.scores[best]),
        piece.word,
        piece.start,
        piece.end,
        piece.index,
        (piece.index,),
    )


def _words(pieces: list[_Piece]) -> list[list[_Piece]]:
    """Pieces grouped into words: each word is a token and the sub-tokens that follow it."""
    groups: list[list[_Piece]] = []
    for piece in pieces:
        if groups and piece.is_subword:
            groups[-1].append(piece)
        else:
            groups.append([piece])
    return groups


def _word(group: list[_Piece], how: Aggregation, strategy: str, text: str) -> Tagged:
    """One word's label: its first token's ("first", "word"), its most confident token's ("max"),
    or the best of its averaged probabilities ("average")."""
    if strategy == "average":
        scores = np.nanmean(np.stack([piece.scores for piece in group]), axis=0)
    elif strategy == "max":
        scores = max(group, key=lambda piece: piece.scores.max()).scores
    else:
        scores = group[0].scores
    best = int(scores.argmax())
    start, end = group[0].start, group[-1].end
    word = text[start:end] if strategy == "word" else how.decode([piece.word for piece in group])
    tokens = tuple(piece.index for piece in group)
    return Tagged(how.labels[best], float(scores[best]), word, start, end, None, tokens)


def _tag(label: str) -> tuple[str, str]:
    """("B" or "I", type): a label without a B-/I- prefix continues ("I") its own type."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


def _group(
    tagged: list[Tagged], decode: Decode, text: str | None, ignored: set[str]
) -> list[tuple[Entity, tuple[int, ...]]]:
    """Adjacent tokens or words of one type as one entity, with its tokens; a B- label starts a
    new one (transformers' `group_entities`). With `text`, an entity's word is the text it spans.
    Groups of an `ignored` type are dropped before their word and score are computed (most of a
    text is "O": decoding its words took half of stage 3)."""
    groups: list[list[Tagged]] = []
    for item in tagged:
        bi, kind = _tag(item.label)
        if groups and bi != "B" and kind == _tag(groups[-1][-1].label)[1]:
            groups[-1].append(item)
        else:
            groups.append([item])
    out = []
    for group in groups:
        # transformers names a group after its first label's text past the first "-"
        label = group[0].label.split("-", 1)[-1]
        if label in ignored:
            continue
        start, end = group[0].start, group[-1].end
        word = text[start:end] if text is not None else decode([item.word for item in group])
        score = _mean([item.score for item in group])
        tokens = tuple(token for item in group for token in item.tokens)
        out.append((Entity(label, score, word, start, end), tokens))
    return out


def _mean(scores: list[float]) -> float:
    """The mean of the scores that are not NaN (NaN if none), as transformers' `np.nanmean`;
    in Python, since the lists are a few words long and numpy's call costs more than the sum.

    >>> _mean([0.5, float("nan"), 1.0])
    0.75
    """
    kept = [score for score in scores if score == score]  # NaN is the one value not equal to itself
    return sum(kept) / len(kept) if kept else float("nan")
