"""`LiteTokenClassifier`: an export of a token classifier (named entities) run without torch.

Stage 1 is the `tokenizers` library on the export's `tokenizer.json`: each whole input with its
offsets, word ids and special tokens (`entities.spans.Spans`), cut into the same windows as the
full classifier's (`spans.cut_windows`). Stages 2-3 and the call contract are the full
classifier's own, torch-free (`entities.tagger.Tagger`): the engine's `loop.run_tokens` over a
`engine.graphs.TokenGraphRunner`, windows merged, and `entities.aggregation`. So an export gives
the same entities through `clearpipe.lite.load` as through `clearpipe.load`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NoReturn

from clearpipe.engine.batching import DEFAULT_MAX_TOKENS
from clearpipe.engine.exported import EXPORT_INFO, export_kind
from clearpipe.engine.graphs import TokenGraphRunner, open_graph
from clearpipe.entities import aggregation, spans
from clearpipe.entities.aggregation import Aggregation
from clearpipe.entities.spans import Spans, TokenWindows
from clearpipe.entities.tagger import Tagger, TokenSettings
from clearpipe.errors import InputError
from clearpipe.lite.folder import read_json, read_labels, read_max_length, read_tokenizer
from clearpipe.postprocess import saved_temperature

if TYPE_CHECKING:
    from tokenizers import Tokenizer


class LiteTokenClassifier(Tagger):
    """A token classifier over an exported folder, without torch: call it as `TokenClassifier`.

    >>> ner = clearpipe.lite.load("ner-onnx/")  # doctest: +SKIP
    >>> ner("Ada met Alan.")[0]["entity_group"]  # doctest: +SKIP
    'PER'
    """

    device = "cpu"

    def __init__(self, tokenizer: Tokenizer, runner: TokenGraphRunner, settings: TokenSettings, source: str):
        self.tokenizer = tokenizer
        self.runner = runner
        self.settings = settings
        self.source = source
        self.aggregation = Aggregation(
            labels=settings.labels,
            word_aware=bool(getattr(tokenizer.model, "continuing_subword_prefix", None)),
            unk_id=_unk_id(tokenizer, Path(source)),
            decode=aggregation.cached(_decoder(tokenizer)),
        )

    @property
    def graph(self) -> Any:
        """The compiled graph (`clearpipe.engine.graphs.Graph`)."""
        return self.runner.graph

    def tokenize(self, inputs: Sequence[Any], is_split_into_words: bool = False) -> TokenWindows:
        """Stage 1: checked inputs (texts, or word lists) -> every input's tokens and its windows.

        >>> ner.tokenize(["Ada met Alan."]).inputs[0].tokens  # doctest: +SKIP
        ['[CLS]', 'ada', 'met', 'alan', '.', '[SEP]']
        """
        s = self.settings
        found, types = self.spans(inputs, is_split_into_words)
        return spans.cut_windows(found, types if s.use_token_type_ids else None, s.max_length, s.stride)

    def spans(self, inputs: Sequence[Any], is_split_into_words: bool) -> tuple[list[Spans], list[list[int]]]:
        """Every input tokenized whole (no truncation): its `Spans` and its token type ids."""
        if not inputs:
            return [], []
        encodings = self.tokenizer.encode_batch(list(inputs), is_pretokenized=is_split_into_words)
        out = []
        for item, encoding in zip(inputs, encodings, strict=True):
            text, starts = spans.joined(item) if is_split_into_words else (item, None)
            words = list(encoding.word_ids)
            offsets = [
                spans.offset(text, start, end, None if starts is None or word is None else starts[word])
                for (start, end), word in zip(encoding.offsets, words, strict=True)
            ]
            special = [bool(flag) for flag in encoding.special_tokens_mask]
            out.append(Spans(text, list(encoding.ids), list(encoding.tokens), offsets, special, words))
        return out, [list(encoding.type_ids) for encoding in encodings]

    def trace(self, text: str, pair: str | None = None, attributions: bool = True) -> NoReturn:
        raise InputError(
            "traces need the full classifier: clearpipe.load (or the CLI without --lite) traces an "
            "export's tokens, labels and entities"
        )

    def __repr__(self) -> str:
        s = self.settings
        return (
            f"LiteTokenClassifier(source={self.source!r}, labels={list(s.labels)}, max_length={s.max_length})"
        )


def load_entities(
    folder: Path,
    graph_file: Path,
    config: SimpleNamespace,
    threads: int | None,
    dtype: str,
    max_length: int | None,
    max_tokens: int | None,
    batch_size: int | None,
    calibrated: bool = True,
) -> LiteTokenClassifier:
    """An export of a token classifier as a `LiteTokenClassifier` (`clearpipe.lite.load` calls it
        for a folder whose config.json names `*ForTokenClassification`). Long texts run in windows of
        `max_length` tokens (default: the export's) overlapping by a quarter window, and a saved
    temperature scales every token's scores unless `calibrated=False`, as `clearpipe.load`'s do.

        >>> ner = load_entities(Path("ner-onnx"), Path("ner-onnx/model.onnx"), config, 2, "auto", None, None, None)  # doctest: +SKIP
    """
    labels = read_labels(config, folder)
    limit = read_max_length(folder, config, read_json(folder / EXPORT_INFO, required=False))
    if max_length is not None and not 4 <= max_length <= limit:
        raise InputError(
            f"max_length must be between 4 and the export's limit of {limit} tokens, got {max_length}"
        )
    tokenizer, pad_id, side = read_tokenizer(folder, config)
    graph = open_graph(graph_file, threads, dtype)
    length = max_length or limit
    settings = TokenSettings(
        max_length=length,
        stride=length // 4,
        labels=tuple(labels),
        use_token_type_ids="token_type_ids" in graph.input_names and _makes_type_ids(folder),
        dtype=f"lite {export_kind(str(folder))}",
        batch_size=batch_size,
        max_tokens=max_tokens or DEFAULT_MAX_TOKENS["cpu"],
        aggregation_strategy=aggregation.DEFAULT_STRATEGY,
        temperature=saved_temperature(config) if calibrated else None,
    )
    runner = TokenGraphRunner(graph, len(labels), pad_id, side)
    return LiteTokenClassifier(tokenizer, runner, settings, str(folder))


def _makes_type_ids(folder: Path) -> bool:
    """Whether the tokenizer hands the model token type ids (`model_input_names`, as transformers reads it)."""
    names = read_json(folder / "tokenizer_config.json", required=False).get("model_input_names")
    return names is None or "token_type_ids" in names


def _unk_id(tokenizer: Tokenizer, folder: Path) -> int | None:
    """The unknown token's id, as transformers' `unk_token_id` reads it: tokenizer_config.json's
    `unk_token`, else the tokenizer model's own."""
    token = read_json(folder / "tokenizer_config.json", required=False).get("unk_token")
    if isinstance(token, dict):  # a serialized AddedToken
        token = token.get("content")
    token = token if isinstance(token, str) else getattr(tokenizer.model, "unk_token", None)
    return None if token is None else tokenizer.token_to_id(token)


def _decoder(tokenizer: Tokenizer) -> aggregation.Decode:
    """transformers' `convert_tokens_to_string`: the tokenizer's decoder, else tokens joined by spaces."""
    decoder = tokenizer.decoder
    if decoder is None:
        return " ".join
    return decoder.decode
