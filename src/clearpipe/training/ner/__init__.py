"""Named entities (token classification): reading CoNLL and JSONL files, entity-level scores,
and training a `*ForTokenClassification` model with transformers' Trainer."""
