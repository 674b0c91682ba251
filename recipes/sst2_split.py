"""An honest SST-2 split: held-out full sentences that share no phrase with the training rows.

`../shared/data/sst2/train.tsv` and `dev.tsv` are both cut from the GLUE SST-2 training set: every
treebank sentence appears there together with its phrases, so a model chosen on `dev.tsv` is
chosen on phrases of sentences it trained on (the old default scored 94.8% there, 89.5% on
test). This recipe step picks `--sentences` whole sentences (rows that are no part of a longer
row, with at least `MIN_WORDS` words) as `heldout.tsv`, and writes every other row of train and
dev to `train.tsv`, except rows of three or more words that occur inside a held-out sentence
(its own phrases). Test sentences share a 3-word-or-longer training row 0.17 times each and a
4-word one 0.04 times, so the held-out sentences are at least as unseen as the test set's.

    python recipes/sst2_split.py --out /tmp/sst2-split   # -> train.tsv, heldout.tsv, split.json

`test.tsv` is never read: it is scored once, at the end of a recipe.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MIN_WORDS = 10
MIN_PHRASE_WORDS = 3
HEADER = "sentence\tlabel\n"


def read_rows(path: Path) -> list[tuple[str, str]]:
    """(sentence, label) rows of an SST-2 TSV, header skipped, text as written (no quoting)."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [(text, label) for text, label in (line.rsplit("\t", 1) for line in lines)]


def spans(words: list[str], shortest: int) -> set[str]:
    """Every contiguous run of at least `shortest` words, joined by spaces."""
    n = len(words)
    return {" ".join(words[i:j]) for i in range(n) for j in range(i + shortest, n + 1)}


def split(rows: list[tuple[str, str]], sentences: int, seed: int) -> tuple[list, list]:
    """(train rows, held-out sentence rows): see the module docstring.

    >>> train, held = split(read_rows(Path("train.tsv")), 800, 0)  # doctest: +SKIP
    """
    proper: set[str] = set()  # every proper part of some row: those rows are not whole sentences
    for text, _ in rows:
        words = text.split()
        proper |= {s for s in spans(words, 1) if len(s) < len(" ".join(words))}
    whole = [row for row in rows if row[0].strip() not in proper and len(row[0].split()) >= MIN_WORDS]
    held = random.Random(seed).sample(sorted(set(whole)), sentences)
    inside: set[str] = set()
    for text, _ in held:
        inside |= spans(text.split(), MIN_PHRASE_WORDS)
    held_texts = {text.strip() for text, _ in held}
    train = [row for row in rows if row[0].strip() not in inside and row[0].strip() not in held_texts]
    return train, held


def write(path: Path, rows: list[tuple[str, str]]) -> None:
    path.write_text(HEADER + "".join(f"{text}\t{label}\n" for text, label in rows), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "sst2")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sentences", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    make(args.data_dir, args.out, args.sentences, args.seed)


def make(data_dir: Path, out: Path, sentences: int = 800, seed: int = 0) -> Path:
    """Write train.tsv, heldout.tsv and split.json into `out` (kept when already there)."""
    if (out / "split.json").is_file():
        return out
    out.mkdir(parents=True, exist_ok=True)
    rows = read_rows(data_dir / "train.tsv") + read_rows(data_dir / "dev.tsv")
    train, held = split(rows, sentences, seed)
    write(out / "train.tsv", train)
    write(out / "heldout.tsv", held)
    summary = {"source_rows": len(rows), "train_rows": len(train), "heldout_sentences": len(held)}
    summary |= {"dropped_phrase_rows": len(rows) - len(train) - len(held), "seed": seed}
    (out / "split.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    return out


if __name__ == "__main__":
    main()
