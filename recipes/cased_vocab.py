"""Give an uncased WordPiece encoder (all-MiniLM-L6-v2) a cased vocabulary, so a tagger built on
it sees capital letters: "Brown" the person and "brown" the colour stop being one token.

No cased English encoder with weights is on PyPI, and capitals are the strongest cue a named-entity
tagger has. This keeps the uncased checkpoint and widens its vocabulary instead:

1. The tokenizer stops lowercasing (accents are still stripped, as the uncased one does).
2. Every piece the uncased tokenizer makes of a word is given back its surface: `Germany` is the
   piece `germany` written `Germany`; `GERMANY` is `germany` written `GERMANY`; in `McDonald` the
   piece `##donald` is written `##Donald`. The most frequent surfaces in a corpus of news text
   (CoNLL-2003 train, AG News train) that differ from their piece become new vocabulary entries,
   and so do `A`-`Z` and `##A`-`##Z`, so a rare capitalised word falls back to letters rather
   than to `[UNK]`.
3. A new entry's embedding is its piece's embedding plus one shared vector per way of writing it
   (`Title`, `UPPER`, `Mixed`), so a capitalised word starts where the uncased model put it, with
   a consistent mark of its case that fine-tuning can learn to read.

The result is a plain BERT checkpoint and `BertTokenizerFast` (a bigger WordPiece vocabulary, no
lowercasing) that transformers loads without clearpipe.

    python recipes/cased_vocab.py --output /tmp/minilm-cased              # the default sizes
    python recipes/cased_vocab.py --output /tmp/minilm-cased --size 4000  # fewer new entries
"""

from __future__ import annotations

import argparse
import csv
import json
import string
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CASES = ("Title", "UPPER", "Mixed")


@dataclass(frozen=True)
class Entry:
    """One new vocabulary entry: its text, the uncased piece it is written from, and its case."""

    token: str
    piece: str
    case: str


def case_of(surface: str) -> str | None:
    """How a piece is written: None when it is all lower case (or has no letters at all)."""
    letters = [c for c in surface if c.isalpha()]
    if not letters or all(c.islower() for c in letters):
        return None
    if all(c.isupper() for c in letters):
        return "UPPER" if len(letters) > 1 or not surface[0].isalpha() else "Title"
    return "Title" if letters[0].isupper() and all(c.islower() for c in letters[1:]) else "Mixed"


def surfaces(tokenizer, words: Iterable[str]) -> Iterator[Entry]:
    """Each piece of each word, as the uncased tokenizer splits the word, written as in the text."""
    from tokenizers.normalizers import BertNormalizer

    keep_case = BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=False
    )
    model = tokenizer.backend_tokenizer.model
    split = tokenizer.backend_tokenizer.pre_tokenizer
    for text in words:
        for word, _ in split.pre_tokenize_str(keep_case.normalize_str(text)):
            lower = word.lower()
            if lower == word or len(lower) != len(word):
                continue  # nothing to restore, or lowercasing moved the characters
            for token in model.tokenize(lower):
                start, end = token.offsets
                prefix = "##" if token.value.startswith("##") else ""
                surface = prefix + word[start:end]
                case = case_of(surface)
                if case is not None and token.value != "[UNK]":
                    yield Entry(surface, token.value, case)


def corpus(conll: Path, agnews: Path) -> Iterator[str]:
    """The words of CoNLL-2003 train and the texts of AG News train: news, written in full case."""
    with conll.open(encoding="utf-8") as lines:
        for line in lines:
            if line.strip() and not line.startswith("-DOCSTART-"):
                yield line.split()[0]
    with agnews.open(encoding="utf-8", newline="") as rows:
        for row in csv.DictReader(rows, delimiter="\t"):
            yield row["text"]


def piece_counts(tokenizer, words: Iterable[str]) -> Counter[str]:
    """How often the uncased tokenizer makes each piece of the words, whatever their case."""
    backend = tokenizer.backend_tokenizer
    counts: Counter[str] = Counter()
    for text in words:
        counts.update(backend.encode(text, add_special_tokens=False).tokens)
    return counts


def choose(tokenizer, words: list[str], size: int, min_count: int, upper: int) -> list[Entry]:
    """The `size` most frequent new surfaces seen at least `min_count` times, the upper-case forms
    of the `upper` most frequent pieces, then the letters."""
    counts = Counter(surfaces(tokenizer, words))
    vocab = tokenizer.get_vocab()
    chosen = [e for e, n in counts.most_common() if n >= min_count and e.token not in vocab][:size]
    taken = {e.token for e in chosen}
    frequent = [p for p, _ in piece_counts(tokenizer, words).most_common() if p.strip("#").isalpha()]
    for piece in frequent[:upper]:
        prefix = "##" if piece.startswith("##") else ""
        token = prefix + piece.removeprefix("##").upper()
        if token not in taken and token not in vocab:
            chosen.append(Entry(token, piece, case_of(token) or "UPPER"))
            taken.add(token)
    for letter in string.ascii_uppercase:
        for prefix in ("", "##"):
            token = prefix + letter
            if token not in taken and token not in vocab:
                chosen.append(Entry(token, prefix + letter.lower(), "Title" if not prefix else "UPPER"))
    return chosen


def build(base: Path, output: Path, entries: list[Entry], mark_scale: float, seed: int) -> None:
    """Write base with `entries` added to its vocabulary and embeddings, lowercasing off."""
    import torch
    from tokenizers import Tokenizer, normalizers
    from tokenizers.models import WordPiece
    from transformers import AutoModel, AutoTokenizer, BertTokenizerFast

    old = AutoTokenizer.from_pretrained(base)
    vocab = dict(old.get_vocab())
    for entry in entries:
        vocab[entry.token] = len(vocab)
    backend = Tokenizer.from_str(old.backend_tokenizer.to_str())
    backend.model = WordPiece(
        vocab, unk_token="[UNK]", continuing_subword_prefix="##", max_input_chars_per_word=100
    )
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=True, lowercase=False
    )
    tokenizer = BertTokenizerFast(tokenizer_object=backend, do_lower_case=False, strip_accents=True)
    tokenizer.model_max_length = old.model_max_length

    model = AutoModel.from_pretrained(base)
    table = model.get_input_embeddings().weight.detach()
    generator = torch.Generator().manual_seed(seed)
    # One mark per case, as long as `mark_scale` times a typical embedding: big enough to read,
    # small enough that a capitalised word starts near its lowercase meaning.
    typical = table.norm(dim=1).median()
    marks = {}
    for case in CASES:
        direction = torch.randn(table.shape[1], generator=generator)
        marks[case] = direction / direction.norm() * typical * mark_scale
    rows = torch.stack([table[old.convert_tokens_to_ids(e.piece)] + marks[e.case] for e in entries])
    model.resize_token_embeddings(len(vocab), mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[len(table) :] = rows
    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    added = Counter(e.case for e in entries)
    (output / "cased_vocab.json").write_text(
        json.dumps(
            {"base": str(base), "added": len(entries), "by_case": added, "mark_scale": mark_scale}, indent=2
        )
        + "\n",
        encoding="utf-8",
    )


def make(
    base: Path,
    output: Path,
    conll: Path = DATA / "conll2003" / "train.txt",
    agnews: Path = DATA / "agnews" / "train.tsv",
    size: int = 8000,
    min_count: int = 2,
    upper: int = 4000,
    mark_scale: float = 0.5,
    seed: int = 0,
) -> int:
    """Write the cased version of `base` into `output`; returns how many entries were added.

    >>> make(Path("minilm-l6"), Path("/tmp/minilm-cased"))  # doctest: +SKIP
    9957
    """
    from transformers import AutoTokenizer

    uncased = AutoTokenizer.from_pretrained(base)
    entries = choose(uncased, list(corpus(conll, agnews)), size, min_count, upper)
    build(base, output, entries, mark_scale, seed)
    return len(entries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="An uncased BERT checkpoint (default: minilm-l6).")
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument(
        "--size", type=int, default=8000, help="New surfaces at most (the letters come on top)."
    )
    parser.add_argument("--min-count", type=int, default=2)
    parser.add_argument(
        "--upper", type=int, default=4000, help="Upper-case forms of this many frequent pieces."
    )
    parser.add_argument("--mark-scale", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--conll", type=Path, default=DATA / "conll2003" / "train.txt")
    parser.add_argument("--agnews", type=Path, default=DATA / "agnews" / "train.tsv")
    args = parser.parse_args()
    if args.base is None:
        from clearpipe.bases import BASES, find

        args.base = Path(find(BASES["minilm-l6"]).source)
    added = make(
        args.base,
        args.output,
        args.conll,
        args.agnews,
        args.size,
        args.min_count,
        args.upper,
        args.mark_scale,
        args.seed,
    )
    print(f"{args.output}: {added} cased entries added", flush=True)


if __name__ == "__main__":
    main()
