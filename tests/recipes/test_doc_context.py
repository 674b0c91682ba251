"""recipes/doc_context.py: CoNLL articles rewritten as chunks of consecutive sentences, and the
chunks' tags cut back into the sentences they came from."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from clearpipe.training.ner.read import read_ner

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
sys.path.insert(0, str(RECIPES))  # doc_context writes with train_ner's write_conll, as a script would
spec = importlib.util.spec_from_file_location("doc_context", RECIPES / "doc_context.py")
doc_context = importlib.util.module_from_spec(spec)
sys.modules["doc_context"] = doc_context
spec.loader.exec_module(doc_context)

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
says VBZ B-VP O

BRUSSELS NNP B-NP B-LOC

-DOCSTART- -X- -X- O

Rome NNP B-NP B-LOC
wins VBZ B-VP O
"""


def test_chunks_keep_articles_apart_and_sentences_whole(tmp_path):
    source = tmp_path / "train.txt"
    source.write_text(CONLL, encoding="utf-8")
    docs = doc_context.documents(source)
    assert [[len(words) for words, _ in doc] for doc in docs] == [[2, 3, 1], [2]]
    # Up to 5 words: the first two sentences join, the third would pass the limit; no chunk
    # crosses into the next article.
    lengths = doc_context.write_chunks(source, tmp_path / "chunks.txt", 5)
    assert lengths == [[2, 3], [1], [2]]
    rows = read_ner(tmp_path / "chunks.txt").sentences
    assert [list(row.words) for row in rows] == [
        ["EU", "rejects", "Peter", "Blackburn", "says"],
        ["BRUSSELS"],
        ["Rome", "wins"],
    ]
    assert list(rows[0].tags) == ["B-ORG", "O", "B-PER", "I-PER", "O"]
    # A sentence longer than the limit is a chunk of its own.
    assert doc_context.write_chunks(source, tmp_path / "one.txt", 1) == [[2], [3], [1], [2]]
