"""Tiny random sequence-classification checkpoints, built on disk for tests.

BERT and DistilBERT share a small WordPiece vocabulary; RoBERTa gets a byte-level BPE trained
on a few sentences. Every model is small enough to build and run in well under a second.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    DistilBertTokenizer,
    RobertaConfig,
    RobertaForSequenceClassification,
    RobertaTokenizer,
)

WORDS = [
    "the",
    "a",
    "an",
    "this",
    "that",
    "film",
    "movie",
    "story",
    "plot",
    "actor",
    "actors",
    "scene",
    "scenes",
    "good",
    "great",
    "bad",
    "awful",
    "boring",
    "fun",
    "funny",
    "love",
    "loved",
    "hate",
    "hated",
    "best",
    "worst",
    "ever",
    "not",
    "very",
    "really",
    "quite",
    "is",
    "was",
    "are",
    "were",
    "it",
    "its",
    "and",
    "but",
    "or",
    "of",
    "to",
    "in",
    "on",
    "with",
    "for",
    "at",
    "by",
    "from",
    "as",
    "be",
    "have",
    "has",
    "had",
    "do",
    "does",
    "did",
    "so",
    "too",
    "just",
    "also",
    "only",
    "sports",
    "world",
    "business",
    "science",
    "tech",
    "market",
    "game",
    "team",
    "win",
    "lost",
    "stock",
    "price",
    "company",
    "new",
    "old",
    "premise",
    "hypothesis",
    "cafe",
    "naive",
    "resume",
    "emoji",
]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CORPUS = [" ".join(WORDS[i : i + 12]) for i in range(0, len(WORDS), 5)] * 3


def _wordpiece_vocab(folder: Path) -> Path:
    pieces = [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"] + list(
        "abcdefghijklmnopqrstuvwxyz0123456789.,!?'"
    )
    vocab = folder / "vocab.txt"
    # Duplicates would give two ids to one token and ids beyond the embedding table.
    vocab.write_text("\n".join(dict.fromkeys(SPECIAL + WORDS + pieces)) + "\n", encoding="utf-8")
    return vocab


def _bpe_files(folder: Path) -> tuple[Path, Path]:
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CORPUS, vocab_size=400, min_frequency=1, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    )
    bpe.save_model(str(folder))
    return folder / "vocab.json", folder / "merges.txt"


def build(
    folder: Path,
    kind: str = "bert",
    num_labels: int = 2,
    problem_type: str | None = None,
    id2label: dict[int, str] | None = None,
    seed: int = 0,
) -> Path:
    """Save a random `kind` ("bert", "distilbert", "roberta") classifier and tokenizer into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    labels = id2label or {i: f"LABEL_{i}" for i in range(num_labels)}
    common = dict(num_labels=num_labels, id2label=labels, label2id={v: k for k, v in labels.items()})
    if problem_type:
        common["problem_type"] = problem_type
    if kind == "roberta":
        vocab, merges = _bpe_files(folder)
        tokenizer = RobertaTokenizer(vocab=str(vocab), merges=str(merges))
        config = RobertaConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            max_position_embeddings=66,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            type_vocab_size=1,
            **common,
        )
        model = RobertaForSequenceClassification(config)
    elif kind == "distilbert":
        tokenizer = DistilBertTokenizer(vocab=str(_wordpiece_vocab(folder)))
        config = DistilBertConfig(
            vocab_size=len(tokenizer),
            dim=32,
            n_layers=2,
            n_heads=2,
            hidden_dim=37,
            max_position_embeddings=64,
            pad_token_id=0,
            **common,
        )
        model = DistilBertForSequenceClassification(config)
    elif kind == "bert":
        tokenizer = BertTokenizer(vocab=str(_wordpiece_vocab(folder)))
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            max_position_embeddings=64,
            pad_token_id=0,
            **common,
        )
        model = BertForSequenceClassification(config)
    else:
        raise ValueError(kind)
    tokenizer.model_max_length = 64
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_sensitive(source: Path, folder: Path, seed: int) -> Path:
    """Copy the checkpoint at `source` into `folder` with large random weights (LayerNorms kept),
    so that its labels depend on the words rather than sitting near 0.5 for every text."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(source, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "LayerNorm" not in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


def with_config_keys(source: Path, folder: Path, **keys: object) -> Path:
    """A copy of the checkpoint `source` in `folder` with `keys` added to its config.json, e.g. a
    saved temperature (`clearpipe_calibration`) or multi-label thresholds (`label_thresholds`)."""
    import json
    import shutil

    shutil.copytree(source, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(keys)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder


EXPORT_WORDS = [
    "good", "bad", "film", "movie", "boring", "fun", "awful", "great",
    "love", "hate", "plot", "worst", "best", "story", "actors", "scenes",
]  # fmt: skip
# Texts from the tiny checkpoints' vocabulary, of many lengths and word mixes.
MIXED_TEXTS = [
    " ".join(EXPORT_WORDS[(i * 7 + j * 3) % len(EXPORT_WORDS)] for j in range(1 + i % 13)) for i in range(120)
]
