"""Find and load a classification checkpoint (sequence, or token for named entities): a local folder, a hub id, or the default.

Hub ids resolve through the transformers cache, so they work for users who are online or who
downloaded the model before; offline, the error says what was searched and what to do instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from clearpipe import pooled
from clearpipe.errors import CheckpointError, InputError
from clearpipe.inputs import longest_input

DEFAULT_MODEL_DIR = Path(__file__).parent / "default_model"
"""Where the embedded default sentiment model lives inside the installed package."""
DEFAULT_NER_DIR = Path(__file__).parent / "default_ner"
"""Where the embedded English NER model lives (`recipes/train_ner.py` installs it)."""
EMBEDDED = {"sentiment": DEFAULT_MODEL_DIR, "ner": DEFAULT_NER_DIR}
"""The names `clearpipe.load` and `--model` take for the models inside the package; a local
folder of the same name wins."""


@dataclass(frozen=True)
class Checkpoint:
    """A loaded model and tokenizer, with where they came from."""

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str


def resolve_source(model: str | os.PathLike[str] | None) -> str:
    """Return a local folder or hub id to load; `None` means the embedded default model, and
    "sentiment" or "ner" name the embedded ones (`EMBEDDED`).

    >>> resolve_source("./my-model")  # doctest: +SKIP
    '/home/me/my-model'
    """
    if model is None:
        return embedded("sentiment")
    path = Path(model).expanduser()
    if path.is_dir():
        _check_folder(path)
        return str(path.resolve())
    if str(model) in EMBEDDED:
        return embedded(str(model))
    if path.exists():
        raise CheckpointError(
            f"{path} is a file; a model is a checkpoint folder (with config.json) or a hub id"
        )
    if _looks_like_path(str(model)):
        raise CheckpointError(f"no such model folder: {path}")
    return str(model)


def embedded(name: str) -> str:
    """The folder of the embedded model `name` ("sentiment" or "ner"), or a `CheckpointError`
    for a build that ships without it.

    >>> embedded("ner")  # doctest: +SKIP
    '/.../site-packages/clearpipe/default_ner'
    """
    folder = EMBEDDED[name]
    if not (folder / "config.json").is_file():
        what = "default sentiment" if name == "sentiment" else "NER"
        raise CheckpointError(
            f"this build of clearpipe ships no embedded {what} model; pass a model, e.g. "
            "clearpipe.load('path/to/checkpoint') or --model path/to/checkpoint"
        )
    return str(folder)


def _looks_like_path(name: str) -> bool:
    # A hub id is "name" or "org/name"; anything else with separators or a path prefix is a path.
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or "\\" in name


def _check_folder(path: Path) -> None:
    if not (path / "config.json").is_file():
        found = sorted(p.name for p in path.iterdir())[:12]
        raise CheckpointError(
            f"{path} is not a Hugging Face checkpoint: it has no config.json "
            f"(found: {', '.join(found) or 'nothing'})"
        )


def load_config(source: str, trust_remote_code: bool = False) -> PretrainedConfig:
    """Load a checkpoint's config, turning hub and cache failures into a `CheckpointError`."""
    try:
        return AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise CheckpointError(_unreachable(source, exc)) from None
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from None


def _unreachable(source: str, exc: Exception) -> str:
    if Path(source).is_dir():
        return f"{source}: cannot read the checkpoint: {exc}"
    from huggingface_hub import constants

    offline = " (offline mode: HF_HUB_OFFLINE is set)" if constants.HF_HUB_OFFLINE else ""
    return (
        f'could not load model "{source}" from the Hugging Face hub or the local cache{offline}; '
        f"searched the cache at {constants.HF_HUB_CACHE}. Download it while online, or pass a local "
        "checkpoint folder instead (clearpipe.load('path/to/folder') or --model path/to/folder)"
    )


def is_token_classifier(config: PretrainedConfig) -> bool:
    """Whether a checkpoint's config.json names a `*ForTokenClassification` architecture (named
    entities, `clearpipe.entities`) rather than a sequence classifier.

    >>> is_token_classifier(load_config("path/to/ner-model"))  # doctest: +SKIP
    True
    """
    return any(str(name).endswith("ForTokenClassification") for name in config.architectures or ())


def load_checkpoint(
    source: str,
    device: torch.device,
    dtype: torch.dtype = torch.float32,
    trust_remote_code: bool = False,
) -> Checkpoint:
    """Load the tokenizer and classification model of `source` onto `device`: a sequence
    classifier, or a token classifier where config.json names one (`is_token_classifier`).

    Refuses checkpoints without a trained classification head, which transformers would
    otherwise fill with random weights and silently return noise.

    >>> ckpt = load_checkpoint(resolve_source("path/to/checkpoint"), torch.device("cpu"))  # doctest: +SKIP
    """
    config = load_config(source, trust_remote_code)
    tokens = is_token_classifier(config)
    _check_architecture(source, config, tokens)
    auto = AutoModelForTokenClassification if tokens else AutoModelForSequenceClassification
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
        with quiet_transformers():
            if pooled.is_pooled(config):  # a few-shot (SetFit) folder: encoder + head on the mean
                model, info = pooled.load_pooled(source, config, dtype)
            else:
                model, info = auto.from_pretrained(
                    source,
                    config=config,
                    dtype=dtype,
                    trust_remote_code=trust_remote_code,
                    output_loading_info=True,
                )
    except OSError as exc:
        raise CheckpointError(_unreachable(source, exc)) from None
    except ValueError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    missing = sorted(info.get("missing_keys", ()))
    if missing:
        raise CheckpointError(
            f"{source} has no trained {'token' if tokens else 'sequence'}-classification head (missing weights: {', '.join(missing[:4])}; "
            f"architectures in config.json: {config.architectures or 'none'}). "
            f"Fine-tune it first: clearpipe train DATA --base {source} --output DIR"
        )
    model.eval()
    return Checkpoint(model=model.to(device), tokenizer=tokenizer, source=source)


def _check_architecture(source: str, config: PretrainedConfig, tokens: bool = False) -> None:
    from transformers.models.auto import modeling_auto

    names = (
        modeling_auto.MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING_NAMES
        if tokens
        else modeling_auto.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES
    )
    if config.model_type not in names and not getattr(config, "auto_map", None):
        kind = "token" if tokens else "sequence"
        raise CheckpointError(
            f"{source}: model type {config.model_type!r} has no {kind}-classification architecture "
            "in transformers"
        )


class quiet_transformers:
    """Hide transformers' load report; clearpipe checks missing weights itself and says why."""

    def __enter__(self) -> None:
        self._level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()

    def __exit__(self, *exc: object) -> None:
        hf_logging.set_verbosity(self._level)
        hf_logging.enable_progress_bar()


def model_max_length(config: PretrainedConfig, tokenizer: PreTrainedTokenizerBase) -> int:
    """The longest input, in tokens, that the model can take.

    Tokenizers without a configured limit report a huge sentinel, so the model's position
    embeddings decide; RoBERTa-style models lose two positions to their padding offset.
    """
    positions = getattr(config, "max_position_embeddings", None)
    return longest_input(config.model_type, positions, tokenizer.model_max_length)


def resolve_device(device: str | torch.device) -> torch.device:
    """Map "auto", "cpu", "cuda", "cuda:1", ... to a torch device, refusing unavailable ones.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(name)
    except RuntimeError:
        raise InputError(f'unknown device "{name}": use "auto", "cpu" or "cuda"') from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f'device "{name}" was asked for, but CUDA is not available on this machine')
    return resolved


def uses_token_type_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether to feed token_type_ids: the tokenizer makes them and the model (or ONNX graph) takes them.

    >>> uses_token_type_ids(checkpoint.model, checkpoint.tokenizer)  # doctest: +SKIP
    True
    """
    import inspect

    if "token_type_ids" not in tokenizer.model_input_names:
        return False
    graph_inputs = getattr(model, "input_names", None)  # an ONNX graph's (clearpipe.engine.onnx_runtime)
    if graph_inputs is not None:
        return "token_type_ids" in graph_inputs
    return "token_type_ids" in inspect.signature(model.forward).parameters
