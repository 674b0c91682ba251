"""Tiny random token-classification checkpoints (BERT WordPiece, RoBERTa byte-level BPE) for the
named-entity tests, built from the tiny sequence classifiers' tokenizers (`checkpoints`)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertForTokenClassification,
    RobertaConfig,
    RobertaForTokenClassification,
)

import checkpoints

NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def build_ner(folder: Path, kind: str, seed: int = 0) -> Path:
    """A random `kind` token classifier with the CoNLL labels, its classifier scaled so that
    labels are confident and vary from token to token ("O" favoured a little)."""
    tokenizer_source = checkpoints.build(folder.parent / f"{folder.name}-seq", kind)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    torch.manual_seed(seed)
    labels = dict(enumerate(NER_LABELS))
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        num_labels=len(labels),
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    if kind == "roberta":
        config = RobertaConfig(
            max_position_embeddings=66,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            type_vocab_size=1,
            **common,
        )
        model = RobertaForTokenClassification(config)
    else:
        model = BertForTokenClassification(BertConfig(max_position_embeddings=64, pad_token_id=0, **common))
    with torch.no_grad():
        model.classifier.weight.mul_(40)
        model.classifier.bias[0] = 1.0
    model.eval()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
