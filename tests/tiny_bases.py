"""Tiny random base checkpoints for training tests: a 2-layer, 64-wide BERT with no classification
head, like a real base, but with the real all-MiniLM-L6-v2 WordPiece vocabulary so that words are
tokens and a few hundred rows are enough to learn from."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertModel


def word_base(folder: Path, tokenizer_source: Path) -> Path:
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_source))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder
