"""Unlabelled copies of training text for distillation: the teacher labels them, the student learns.

Two kinds, both for rows of six words or more. Word dropout deletes 15% of the words. Word
replacement swaps 30% of them for one of their six nearest words in the teacher's own input
embeddings (cosine, after centring), the cheap form of TinyBERT's augmentation that needs neither
GloVe nor a masked-LM head (all-mpnet-base-v2 ships without one). Neighbours are drawn from words
of the training text itself, so copies stay in its vocabulary; they include antonyms ("good" ->
"bad"), which is wanted: the teacher relabels every copy, so a flipped sentence is a contrast
the student learns from rather than label noise.

    python recipes/augment.py TRAIN.tsv OUT.tsv --dropout 1 --replace 1 --teacher DIR
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sst2_split

MIN_WORDS = 6


def write(train: Path, out: Path, dropout: int, replace: int, teacher: Path | None, seed: int = 0) -> Path:
    """Write `dropout` word-dropout and `replace` word-replacement copies of every training row of
    six words or more to `out` (one `sentence` column, no labels); skipped when `out` exists.

    >>> write(Path("train.tsv"), Path("aug.tsv"), 1, 1, Path("teacher"))  # doctest: +SKIP
    """
    if out.is_file():
        return out
    rows = [text.split() for text, _ in sst2_split.read_rows(train)]
    rows = [words for words in rows if len(words) >= MIN_WORDS]
    table = neighbours(teacher, {w for words in rows for w in words}) if replace else {}
    rng = random.Random(seed)
    texts = [drop_words(words, rng) for words in rows for _ in range(dropout)]
    # copy-major order: a run with one more copy extends the rows (and teacher logits) of one with fewer
    texts += [replace_words(words, table, rng) for _ in range(replace) for words in rows]
    out.write_text("sentence\n" + "".join(f"{t}\n" for t in texts), encoding="utf-8")
    print(
        f"augmented: {len(rows) * dropout} word-dropout and {len(rows) * replace} word-replacement rows in {out}"
    )
    return out


def drop_words(words: list[str], rng: random.Random, rate: float = 0.15) -> str:
    """`words` with each one deleted at `rate` (never all of them).

    >>> drop_words("a b".split(), random.Random(0), rate=1.0)
    'a'
    """
    return " ".join([w for w in words if rng.random() >= rate] or words[:1])


def replace_words(
    words: list[str], table: dict[str, list[str]], rng: random.Random, rate: float = 0.3
) -> str:
    """`words` with each one that has neighbours in `table` swapped for one of them at `rate`; at
    least one is swapped when any can be, so no copy repeats its row.

    >>> replace_words("a good film".split(), {"good": ["great"]}, random.Random(0), rate=0.0)
    'a great film'
    """
    out = [rng.choice(table[w]) if w in table and rng.random() < rate else w for w in words]
    if out == words and (swappable := [i for i, w in enumerate(words) if w in table]):
        i = rng.choice(swappable)
        out[i] = rng.choice(table[words[i]])
    return " ".join(out)


def neighbours(model: Path, words: set[str], k: int = 6) -> dict[str, list[str]]:
    """The `k` nearest words to each of `words` by cosine of `model`'s input embeddings (mean
    removed), among those of `words` that are one alphabetic token of its vocabulary.

    >>> neighbours(Path("teacher"), {"good", "great", "film"}, k=1)["good"]  # doctest: +SKIP
    ['great']
    """
    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    weights = load_file(str(model / "model.safetensors"))
    name = next(n for n in weights if n.endswith("word_embeddings.weight"))
    ids = {w: tokenizer.token_to_id(w) for w in sorted(words) if w.isalpha()}
    vocab = [w for w, i in ids.items() if i is not None]
    vectors = weights[name].float()
    vectors = torch.nn.functional.normalize(vectors - vectors.mean(0), dim=1)[[ids[w] for w in vocab]]
    table = {}
    for start in range(0, len(vocab), 2048):  # a block of rows at a time: the full matrix is GBs
        sims = vectors[start : start + 2048] @ vectors.T
        sims[torch.arange(sims.shape[0]), torch.arange(start, start + sims.shape[0])] = -2.0
        for row, top in enumerate(sims.topk(min(k, len(vocab) - 1), dim=1).indices.tolist()):
            table[vocab[start + row]] = [vocab[j] for j in top]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dropout", type=int, default=1, help="word-dropout copies per row")
    parser.add_argument("--replace", type=int, default=0, help="word-replacement copies per row")
    parser.add_argument("--teacher", type=Path, help="model folder whose embeddings pick neighbours")
    args = parser.parse_args()
    if args.replace and args.teacher is None:
        parser.error("--replace needs --teacher (its input embeddings choose the neighbours)")
    write(args.train, args.out, args.dropout, args.replace, args.teacher)


if __name__ == "__main__":
    main()
