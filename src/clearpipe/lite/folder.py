"""Reading a folder written by `clearpipe export`, for `clearpipe.lite` (torch-free): its graph
file, config.json, labels, the longest input it takes, and its `tokenizers` tokenizer."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

from clearpipe.engine.exported import ONNX_FILE, OPENVINO_FILE
from clearpipe.errors import CheckpointError
from clearpipe.inputs import longest_input

if TYPE_CHECKING:
    from tokenizers import Tokenizer


def read_json(path: Path, required: bool = True) -> dict:
    """A JSON file of the folder; {} for a missing optional one, else a `CheckpointError` naming it."""
    if not path.is_file():
        if required:
            raise CheckpointError(f"{path} is missing: an export folder holds the checkpoint's config.json")
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON: {error}") from None


def read_labels(config: SimpleNamespace, folder: Path) -> list[str]:
    """Label names in label-id order (config's `num_labels` and `problem_type` set as transformers would)."""
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


def read_max_length(folder: Path, config: SimpleNamespace, info: dict) -> int:
    """The longest input the export takes: the length it was traced for, else the model's limit."""
    if info.get("max_length"):  # exports since 2026-12-06 record the length they were traced for
        return int(info["max_length"])
    saved = read_json(folder / "tokenizer_config.json", required=False).get("model_max_length")
    positions = getattr(config, "max_position_embeddings", None)
    return longest_input(
        getattr(config, "model_type", None), positions, saved if isinstance(saved, int | float) else None
    )


def read_tokenizer(folder: Path, config: SimpleNamespace) -> tuple[Tokenizer, int, str]:
    """The export's `tokenizer.json` (no padding, no truncation: the caller sets what it needs),
    its pad id and the side transformers pads on (tokenizer_config.json's, right by default)."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise CheckpointError(f"{path} is missing: clearpipe.lite needs a fast tokenizer's tokenizer.json")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()  # batches are padded here, each to its own longest row
    tokenizer.no_truncation()
    saved = read_json(folder / "tokenizer_config.json", required=False)
    pad_token = saved.get("pad_token")
    pad_id = tokenizer.token_to_id(pad_token) if isinstance(pad_token, str) else None
    if pad_id is None:
        pad_id = getattr(config, "pad_token_id", None) or 0
    # transformers pads on the side tokenizer_config.json names, right by default; so does lite.
    side = "left" if saved.get("padding_side") == "left" else "right"
    return tokenizer, int(pad_id), side


def is_token_export(config: SimpleNamespace) -> bool:
    """Whether config.json names a `*ForTokenClassification` architecture (named entities), as
    `clearpipe.loading.is_token_classifier` asks of a checkpoint.

    >>> is_token_export(SimpleNamespace(architectures=["BertForTokenClassification"]))
    True
    """
    return any(
        str(name).endswith("ForTokenClassification") for name in getattr(config, "architectures", None) or ()
    )


def graph_file_of(folder: Path) -> Path:
    """The folder's graph (OpenVINO's `model.xml` first, else `model.onnx`), or a `CheckpointError`
    saying the folder is not an export."""
    graph_file = next((folder / f for f in (OPENVINO_FILE, ONNX_FILE) if (folder / f).is_file()), None)
    if graph_file is None:
        raise CheckpointError(
            f"{folder} is not a folder written by `clearpipe export` (no {OPENVINO_FILE} or {ONNX_FILE}); "
            "clearpipe.lite runs exports only, clearpipe.load runs checkpoints"
        )
    return graph_file
