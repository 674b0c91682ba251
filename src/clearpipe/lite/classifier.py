"""`LiteClassifier`: the tokenizer stage, an exported graph and the post-processing stage, in numpy.

Text becomes ids with the `tokenizers` library reading the export's `tokenizer.json` (the same
Rust tokenizer transformers' fast tokenizers wrap, so the ids are the same). Everything after that
is the full classifier's own code: the engine's loop (`clearpipe.engine.loop`: token-budget
batches, the int8 referee's re-runs) over a `clearpipe.engine.graphs.GraphRunner` (padding on the
tokenizer's side), and stage 3's `clearpipe.postprocess.Scoring`. What lite cannot do (long-text
windows, traces) answers with a one-line `InputError` naming why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, ClassVar, NoReturn

import numpy as np

from clearpipe.contract import answer
from clearpipe.engine import loop
from clearpipe.engine.batching import DEFAULT_MAX_TOKENS
from clearpipe.engine.exported import EXPORT_INFO, export_kind
from clearpipe.engine.graphs import GraphRunner, export_referee, open_graph
from clearpipe.engine.loop import Referee
from clearpipe.errors import InputError
from clearpipe.inputs import TextInput, cut
from clearpipe.lite.folder import (
    graph_file_of,
    is_token_export,
    read_json,
    read_labels,
    read_max_length,
    read_tokenizer,
)
from clearpipe.postprocess import (
    BEST,
    Activation,
    Output,
    Predictions,
    Scoring,
    ScoringView,
    Temperature,
    TopK,
)
from clearpipe.tokens import Tokenized

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tokenizers import Encoding, Tokenizer

    from clearpipe.lite.entities import LiteTokenClassifier


_NO_CHUNK = (
    'long_text "chunk" needs the full classifier (clearpipe.load, or the CLI without --lite); lite truncates'
)


@dataclass(frozen=True)
class LiteSettings(ScoringView):
    """A lite classifier's resolved settings, read by the front ends as `Classifier.settings`."""

    scoring: Scoring
    dtype: str  # shown by /info: "lite openvino int8-dynamic", say
    max_tokens: int
    batch_size: int | None = None  # most rows per batch (None: as many as `max_tokens` allows)
    long_text: str = "truncate"  # lite cuts long inputs at `max_length` (no windows)
    long_text_modes: ClassVar[tuple[str, ...]] = ("truncate",)


@dataclass
class LiteClassifier:
    """A classifier over an exported folder, without torch: see `clearpipe.lite`."""

    tokenizer: Tokenizer
    runner: GraphRunner
    config: SimpleNamespace  # config.json, read by attribute as `clearpipe.postprocess` reads one
    settings: LiteSettings
    max_length: int
    referee: Referee | None = None
    source: str = ""  # the export folder, as given to `load`
    device = "cpu"

    @property
    def labels(self) -> list[str]:
        return list(self.settings.scoring.labels)

    @property
    def graph(self):
        """The compiled graph (`clearpipe.engine.graphs.Graph`)."""
        return self.runner.graph

    @property
    def long_text(self) -> str:
        """Always "truncate": lite cuts long inputs at `max_length` (no windows)."""
        return self.settings.long_text

    @property
    def thresholds(self) -> tuple[float, ...] | None:
        """A multi-label model's per-label thresholds (saved, else 0.5); None for single-label."""
        return self.settings.thresholds

    @property
    def activation(self) -> Activation:
        """The model's own activation (softmax, sigmoid or none), as the full classifier picks it."""
        return self.settings.activation

    @property
    def temperature(self) -> Temperature | None:
        """The saved calibration temperature, or None where there is none or `calibrated=False`."""
        return self.settings.temperature

    @property
    def budget(self) -> loop.Budget:
        """How the engine cuts rows into batches (see `clearpipe.engine.loop`)."""
        return loop.Budget(self.settings.max_tokens, self.settings.batch_size)

    @property
    def packs(self) -> bool:
        """Never: a graph runs padded batches, each padded to its longest row."""
        return False

    def encode(self, items: Sequence[TextInput]) -> list[Encoding]:
        """Token ids per item (special tokens added, truncated to `max_length`), unpadded."""
        # bounded memory: see `clearpipe.inputs.CHARS_PER_TOKEN`
        return self.tokenizer.encode_batch([cut(item, self.max_length) for item in items])

    def tokenize(self, items: Sequence[TextInput], keep_encodings: bool = False) -> Tokenized:
        """Stage 1 as the full classifier hands it on: ids per row, unpadded, and which were cut.

        >>> clf.tokenize(["fine"]).input_ids  # doctest: +SKIP
        [[101, 2986, 102]]
        """
        encodings = self.encode(items)
        return Tokenized(
            input_ids=[e.ids for e in encodings],
            token_type_ids=[e.type_ids for e in encodings],
            truncated=[bool(e.overflowing) for e in encodings],
            encodings=encodings if keep_encodings else None,
        )

    def logits(self, rows: Tokenized | Sequence[TextInput]) -> np.ndarray:
        """Logits (rows, labels) in input order, through the engine's loop; int8 close calls re-run
        by the referee. `rows` are inputs, or rows already tokenized (by `tokenize`, or several
        calls' rows joined, as the server's micro-batches are).

        >>> clf.logits(["fine", "awful"]).shape  # doctest: +SKIP
        (2, 2)
        """
        tokenized = rows if isinstance(rows, Tokenized) else self.tokenize(rows)
        return loop.run(tokenized, self.runner, self.budget, self.referee)

    def logits_of(self, tokenized: Tokenized) -> np.ndarray:
        """`logits` of rows already tokenized (kept for callers from before `logits` took them)."""
        return self.logits(tokenized)

    def postprocess(
        self, logits: np.ndarray, function_to_apply: str | Activation | None = None
    ) -> Predictions:
        """Stage 3: logits -> scores, with the saved temperature and thresholds, in the model's own
        activation or `function_to_apply`'s.

        >>> clf.postprocess(clf.logits(["fine"])).best  # doctest: +SKIP
        array([1])
        """
        return self.settings.scoring.postprocess(logits, function_to_apply)

    def predict(
        self, items: Sequence[TextInput], function_to_apply: str | Activation | None = None
    ) -> Predictions:
        """Scores for every item, with the saved temperature and thresholds applied."""
        return self.postprocess(self.logits(list(items)), function_to_apply)

    def predict_items(
        self, items: Sequence[TextInput], function_to_apply: str | Activation | None = None
    ) -> Predictions:
        """`predict` under the name the front ends call on either classifier.

        >>> clf.predict_items(["fine"]).scores.shape  # doctest: +SKIP
        (1, 2)
        """
        return self.predict(items, function_to_apply)

    def check_min_score(
        self, min_score: float | None, function_to_apply: str | Activation | None = None
    ) -> float | None:
        """The `min_score` a call uses (its own, else the one given to `load`), checked against the
        scores it would apply to (softmax only), as the full classifier's.

        >>> clf.check_min_score(0.9)  # doctest: +SKIP
        0.9
        """
        return self.settings.scoring.check_min_score(min_score, function_to_apply)

    def warmup(self) -> None:
        """Run two small batches so that the runtime's first-call setup happens before real work."""
        self.predict(["warm up " * 4, "warm up " * 30])

    def tokenize_windows(self, items: Sequence[TextInput]) -> NoReturn:
        raise InputError(_NO_CHUNK)

    def combine_windows(self, per_window: Predictions, windows: object) -> NoReturn:
        raise InputError(_NO_CHUNK)

    def trace(self, text: str, pair: str | None = None, attributions: bool = True) -> NoReturn:
        raise InputError(
            "traces need the full classifier: clearpipe.load (or the CLI without --lite) traces an "
            "export's tokens, logits and scores"
        )

    def __call__(
        self,
        inputs: object,
        top_k: TopK = BEST,
        function_to_apply: str | Activation | None = None,
        min_score: float | None = None,
    ) -> Output | list[Output]:
        """Classify a text, a `(text, pair)` or a list of them, by the output contract.

        >>> clf("what a lovely day")  # doctest: +SKIP
        {'label': 'positive', 'score': 0.98}
        """
        return answer(self, inputs, top_k, function_to_apply, min_score)


def load(
    folder: str | Path,
    *,
    threads: int | None = None,
    dtype: str = "auto",
    max_length: int | None = None,
    max_tokens: int | None = None,
    batch_size: int | None = None,
    calibrated: bool = True,
    referee: bool = True,
    min_score: float | None = None,
) -> LiteClassifier | LiteTokenClassifier:
    """Load a folder written by `clearpipe export` (either format) to run without torch; one
    exported from a token classifier (named entities) as a `lite.entities.LiteTokenClassifier`.

    `threads` (None: one per physical core), `dtype` ("auto", "float32" or "bfloat16": OpenVINO's
    precision for float layers), `max_length` (tokens; default: the export's), `max_tokens`
    (padded tokens per batch), `batch_size` (rows per batch) and `calibrated` mean what they
    mean for `clearpipe.load`;
    `referee=False` skips the float re-run of an int8 OpenVINO export's close calls; `min_score`
    marks results below it `"decided": false`, as `clearpipe.load`'s does.

    >>> clf = load("exported-int8/", threads=2)  # doctest: +SKIP
    >>> clf(["fine", "awful"])  # doctest: +SKIP
    [{'label': 'positive', 'score': 0.97}, {'label': 'negative', 'score': 0.99}]
    """
    if batch_size is not None and batch_size < 1:  # before any graph compiles
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    folder = Path(folder)
    graph_file = graph_file_of(folder)
    info = read_json(folder / EXPORT_INFO, required=False)
    config = SimpleNamespace(**read_json(folder / "config.json"))
    if is_token_export(config):  # named entities: `clearpipe.lite.entities`
        from clearpipe.lite.entities import load_entities

        if min_score is not None:
            raise InputError("min_score applies to sequence classifiers, not to token classifiers")
        return load_entities(
            folder, graph_file, config, threads, dtype, max_length, max_tokens, batch_size, calibrated
        )
    labels = read_labels(config, folder)
    limit = read_max_length(folder, config, info)
    if max_length is not None and not 2 <= max_length <= limit:
        raise InputError(
            f"max_length must be between 2 and the export's limit of {limit} tokens, got {max_length}"
        )
    tokenizer, pad_id, side = read_tokenizer(folder, config)
    # longest-first for pairs, as transformers' truncation=True
    tokenizer.enable_truncation(max_length or limit)
    runner = GraphRunner(open_graph(graph_file, threads, dtype), len(labels), pad_id, side)
    scoring = Scoring.of(config, labels, calibrated=calibrated, min_score=min_score)
    sigmoid = scoring.activation is Activation.SIGMOID
    judge = export_referee(folder, runner, threads, dtype, sigmoid) if referee else None
    budget = max_tokens or DEFAULT_MAX_TOKENS["cpu"]
    settings = LiteSettings(scoring, f"lite {export_kind(str(folder))}", budget, batch_size)
    return LiteClassifier(tokenizer, runner, config, settings, max_length or limit, judge, str(folder))
