"""`LiteClassifier`: the tokenizer stage, an exported graph and the post-processing stage, in numpy.

Text becomes ids with the `tokenizers` library reading the export's `tokenizer.json` (the same
Rust tokenizer transformers' fast tokenizers wrap, so the ids are the same), rows are cut into
the engine's token-budget batches, padded into int64 arrays and run by `clearpipe.lite.runtime`;
the logits go through `clearpipe.postprocess`, the full classifier's own stage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import numpy as np

from clearpipe.engine.batching import DEFAULT_MAX_TOKENS, token_budget_batches
from clearpipe.engine.exported import EXPORT_INFO, ONNX_FILE, OPENVINO_FILE, REFEREE_FILE, referee_margin
from clearpipe.engine.recheck import close_calls
from clearpipe.errors import CheckpointError, InputError
from clearpipe.inputs import TextInput, longest_input, normalize_inputs
from clearpipe.lite.runtime import Graph, open_graph
from clearpipe.postprocess import (
    BEST,
    Activation,
    Output,
    Predictions,
    Temperature,
    TopK,
    check_min_score,
    check_top_k,
    default_activation,
    parse_activation,
    postprocess,
    saved_temperature,
    saved_thresholds,
)
from clearpipe.tokens import Tokenized

if TYPE_CHECKING:
    from tokenizers import Encoding, Tokenizer


@dataclass(frozen=True)
class Referee:
    """The float graph that re-runs an int8 graph's close calls, and the margin that makes one
    (measured by `clearpipe export` on its validation texts: see `clearpipe.engine.recheck`)."""

    graph: Graph
    margin: float


@dataclass
class LiteClassifier:
    """A classifier over an exported folder, without torch: see `clearpipe.lite`."""

    tokenizer: Tokenizer
    graph: Graph
    config: SimpleNamespace  # config.json, read by attribute as `clearpipe.postprocess` reads one
    labels: list[str]
    max_length: int
    max_tokens: int
    pad_id: int
    referee: Referee | None = None
    calibrated: bool = True
    batch_size: int | None = None  # most rows per batch (None: as many as `max_tokens` allows)
    source: str = ""  # the export folder, as given to `load`

    @property
    def long_text(self) -> str:
        """Always "truncate": lite cuts long inputs at `max_length` (no windows)."""
        return "truncate"

    @property
    def thresholds(self) -> tuple[float, ...] | None:
        """A multi-label model's per-label thresholds (saved, else 0.5); None for single-label."""
        return saved_thresholds(self.config, self.labels)

    def encode(self, items: list[TextInput]) -> list[Encoding]:
        """Token ids per item (special tokens added, truncated to `max_length`), unpadded."""
        return self.tokenizer.encode_batch(items)

    def tokenize(self, items: list[TextInput]) -> Tokenized:
        """Stage 1 as the full classifier hands it on: ids per row, unpadded, and which were cut.

        >>> clf.tokenize(["fine"]).input_ids  # doctest: +SKIP
        [[101, 2986, 102]]
        """
        encodings = self.encode(items)
        return Tokenized(
            input_ids=[e.ids for e in encodings],
            token_type_ids=[e.type_ids for e in encodings],
            truncated=[bool(e.overflowing) for e in encodings],
        )

    def logits(self, items: list[TextInput]) -> np.ndarray:
        """Logits (rows, labels) in input order; int8 close calls re-run by the referee.

        >>> clf.logits(["fine", "awful"]).shape  # doctest: +SKIP
        (2, 2)
        """
        return self.logits_of(self.tokenize(items))

    def logits_of(self, tokenized: Tokenized) -> np.ndarray:
        """`logits` of rows already tokenized (by `tokenize`, or several calls' rows joined, as the
        server's micro-batches are).

        >>> clf.logits_of(clf.tokenize(["fine"])).shape  # doctest: +SKIP
        (1, 2)
        """
        logits = self._run(self.graph, tokenized, range(len(tokenized)))
        if self.referee is not None and len(logits):
            sigmoid = self.config.problem_type == "multi_label_classification"
            close = close_calls(logits, self.referee.margin, sigmoid)
            if len(close):
                logits[close] = self._run(self.referee.graph, tokenized, close)
        return logits

    @property
    def activation(self) -> Activation:
        """The model's own activation (softmax, sigmoid or none), as the full classifier picks it."""
        return default_activation(self.config)

    @property
    def temperature(self) -> Temperature | None:
        """The saved calibration temperature, or None where there is none or `calibrated=False`."""
        return saved_temperature(self.config) if self.calibrated else None

    def postprocess(
        self, logits: np.ndarray, function_to_apply: str | Activation | None = None
    ) -> Predictions:
        """Stage 3: logits -> scores, with the saved temperature and thresholds, in the model's own
        activation or `function_to_apply`'s.

        >>> clf.postprocess(clf.logits(["fine"])).best  # doctest: +SKIP
        array([1])
        """
        activation = self._activation(function_to_apply)
        return postprocess(logits, self.labels, activation, self.temperature, self.thresholds)

    def predict(self, items: list[TextInput]) -> Predictions:
        """Scores for every item, with the saved temperature and thresholds applied."""
        return self.postprocess(self.logits(items))

    def predict_items(self, items: list[TextInput]) -> Predictions:
        """`predict` under the name `clearpipe.bulk.local` calls on either classifier.

        >>> clf.predict_items(["fine"]).scores.shape  # doctest: +SKIP
        (1, 2)
        """
        return self.predict(items)

    def check_min_score(
        self, min_score: float | None, function_to_apply: str | Activation | None = None
    ) -> float | None:
        """`min_score` checked against the scores it would apply to (softmax only), as the full
        classifier's.

        >>> clf.check_min_score(0.9)  # doctest: +SKIP
        0.9
        """
        return check_min_score(min_score, self._activation(function_to_apply))

    def _activation(self, function_to_apply: str | Activation | None) -> Activation:
        # as `Classifier._activation`: the caller's choice, else the model's own
        return self.activation if function_to_apply is None else parse_activation(function_to_apply)

    def __call__(
        self, inputs: object, top_k: TopK = BEST, min_score: float | None = None
    ) -> Output | list[Output]:
        """Classify a text, a `(text, pair)` or a list of them, by the output contract.

        >>> clf("what a lovely day")  # doctest: +SKIP
        {'label': 'positive', 'score': 0.98}
        """
        batch = normalize_inputs(inputs)
        top_k = check_top_k(top_k, len(self.labels))
        min_score = self.check_min_score(min_score)
        outputs = self.predict(batch.items).to_output(top_k, min_score) if batch.items else []
        return outputs[0] if batch.single else outputs

    def _run(self, graph: Graph, tokenized: Tokenized, rows) -> np.ndarray:
        rows = list(rows)
        lengths = [len(tokenized.input_ids[row]) for row in rows]
        out = np.zeros((len(rows), len(self.labels)), dtype=np.float32)
        for batch in token_budget_batches(lengths, self.max_tokens, self.batch_size):
            out[batch] = graph.run(self._feeds(tokenized, [rows[i] for i in batch]))
        return out

    def _feeds(self, tokenized: Tokenized, rows: list[int]) -> dict[str, np.ndarray]:
        width = max(len(tokenized.input_ids[row]) for row in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)  # (B, T)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            n = len(tokenized.input_ids[row])
            ids[i, :n], mask[i, :n] = tokenized.input_ids[row], 1
            if tokenized.token_type_ids is not None:
                types[i, :n] = tokenized.token_type_ids[row]
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


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
) -> LiteClassifier:
    """Load a folder written by `clearpipe export` (either format) to run without torch.

    `threads` (None: one per physical core), `dtype` ("auto", "float32" or "bfloat16": OpenVINO's
    precision for float layers), `max_length` (tokens; default: the export's), `max_tokens`
    (padded tokens per batch), `batch_size` (rows per batch) and `calibrated` mean what they
    mean for `clearpipe.load`;
    `referee=False` skips the float re-run of an int8 OpenVINO export's close calls.

    >>> clf = load("exported-int8/", threads=2)  # doctest: +SKIP
    >>> clf(["fine", "awful"])  # doctest: +SKIP
    [{'label': 'positive', 'score': 0.97}, {'label': 'negative', 'score': 0.99}]
    """
    if batch_size is not None and batch_size < 1:  # before any graph compiles
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    folder = Path(folder)
    graph_file = next((folder / f for f in (OPENVINO_FILE, ONNX_FILE) if (folder / f).is_file()), None)
    if graph_file is None:
        raise CheckpointError(
            f"{folder} is not a folder written by `clearpipe export` (no {OPENVINO_FILE} or {ONNX_FILE}); "
            "clearpipe.lite runs exports only, clearpipe.load runs checkpoints"
        )
    info = _read_json(folder / EXPORT_INFO, required=False)
    config = SimpleNamespace(**_read_json(folder / "config.json"))
    labels = _labels(config, folder)
    limit = _max_length(folder, config, info)
    if max_length is not None and not 2 <= max_length <= limit:
        raise InputError(
            f"max_length must be between 2 and the export's limit of {limit} tokens, got {max_length}"
        )
    tokenizer, pad_id = _tokenizer(folder, max_length or limit, config)
    graph = open_graph(graph_file, threads, dtype)
    margin = referee_margin(folder) if referee else None
    judge = None if margin is None else Referee(open_graph(folder / REFEREE_FILE, threads, dtype), margin)
    budget = max_tokens or DEFAULT_MAX_TOKENS["cpu"]
    return LiteClassifier(
        tokenizer,
        graph,
        config,
        labels,
        max_length or limit,
        budget,
        pad_id,
        judge,
        calibrated,
        batch_size,
        str(folder),
    )


def _read_json(path: Path, required: bool = True) -> dict:
    if not path.is_file():
        if required:
            raise CheckpointError(f"{path} is missing: an export folder holds the checkpoint's config.json")
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from None


def _labels(config: SimpleNamespace, folder: Path) -> list[str]:
    # transformers leaves its default names (LABEL_0, ...) out of config.json and rebuilds them
    # from num_labels (2 when absent); read the file the same way.
    id2label = getattr(config, "id2label", None) or {
        str(i): f"LABEL_{i}" for i in range(getattr(config, "num_labels", 2))
    }
    try:
        labels = [str(id2label[key]) for key in sorted(id2label, key=int)]
    except (ValueError, TypeError):
        keys = list(id2label)[:5]
        raise CheckpointError(f"{folder}/config.json: id2label keys must be label ids, got {keys}") from None
    config.num_labels = len(labels)
    config.problem_type = getattr(config, "problem_type", None)
    return labels


def _max_length(folder: Path, config: SimpleNamespace, info: dict) -> int:
    if info.get("max_length"):  # exports since 2026-12-06 record the length they were traced for
        return int(info["max_length"])
    saved = _read_json(folder / "tokenizer_config.json", required=False).get("model_max_length")
    positions = getattr(config, "max_position_embeddings", None)
    return longest_input(
        getattr(config, "model_type", None), positions, saved if isinstance(saved, int | float) else None
    )


def _tokenizer(folder: Path, max_length: int, config: SimpleNamespace) -> tuple[Tokenizer, int]:
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: clearpipe.lite needs a fast tokenizer's tokenizer.json")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()  # batches are padded here, each to its own longest row
    tokenizer.enable_truncation(max_length)  # longest-first for pairs, as transformers' truncation=True
    pad_token = _read_json(folder / "tokenizer_config.json", required=False).get("pad_token")
    pad_id = tokenizer.token_to_id(pad_token) if isinstance(pad_token, str) else None
    if pad_id is None:
        pad_id = getattr(config, "pad_token_id", None) or 0
    return tokenizer, int(pad_id)
