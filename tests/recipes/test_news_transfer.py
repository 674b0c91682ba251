"""recipes/news_transfer.py: AG News texts cleaned of their markup and split into words as CoNLL-2003
writes them, one JSONL row of tokens a text, readable by `clearpipe train --unlabeled`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from clearpipe.training.ner.unlabeled import read_unlabeled_words

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
spec = importlib.util.spec_from_file_location("news_transfer", RECIPES / "news_transfer.py")
news_transfer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(news_transfer)


def test_markup_and_entities_are_gone():
    raw = (
        '"Kimberly-Clark Corp. &lt;A HREF=""http://www.investor.reuters.com/x""&gt;KMB.N&lt;/A&gt; said '
        'it is targeting \\$400 million; it #39;s  quot;on track quot; Merck  amp; Co.  #151; AT amp;T"'
    )
    assert news_transfer.clean(raw) == (
        'Kimberly-Clark Corp. KMB.N said it is targeting $400 million; it\'s "on track" Merck & Co. — AT&T'
    )


def test_words_are_split_as_conll_writes_them():
    assert news_transfer.conll_tokens("U.N. envoy: Germany's 1,000-strong force isn't e-mail-ready (AFP).") == [
        "U.N.", "envoy", ":", "Germany", "'s", "1,000", "-", "strong", "force", "is", "n't",
        "e-mail-ready", "(", "AFP", ")", ".",
    ]  # fmt: skip


def test_write_gives_one_row_of_tokens_per_text_that_the_trainer_reads(tmp_path):
    tsv = tmp_path / "train.tsv"
    tsv.write_text("text\tlabel\nIt #39;s over.\tSci/Tech\n\t World\nNASA delays the shuttle.\tSci/Tech\n")
    out = tmp_path / "news.jsonl"
    assert news_transfer.write(tsv, out) == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows == [
        {"tokens": ["It", "'s", "over", "."]},
        {"tokens": ["NASA", "delays", "the", "shuttle", "."]},
    ]
    assert read_unlabeled_words(out).sentences == [tuple(r["tokens"]) for r in rows]
    assert not list(tmp_path.glob("*.partial"))
    assert news_transfer.write(tsv, tmp_path / "one.jsonl", limit=1) == 1
    assert (tmp_path / "one.jsonl").read_text().splitlines() == out.read_text().splitlines()[:1]
