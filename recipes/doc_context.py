"""An experiment: does a tagger that reads neighbouring sentences of its document tag better?

CoNLL-2003 sentences come in Reuters articles (`-DOCSTART-` lines separate them). A sentence
alone is often ambiguous to an uncased tagger ("jordan" the country or the player), and the
article around it usually settles it; Devlin et al. (2019) scored BERT on CoNLL-2003 "with the
maximal document context", and FLERT (Schweter and Akbik, 2020) measured +1 to +2 F1 from
context. The experiment keeps the model and `clearpipe train` as they are and changes the rows:
every split is rewritten as chunks of consecutive sentences of one article, up to `--words` words
(a longer sentence is a chunk of its own), so the tagger trains and is scored on text with context,
as it sees a whole article a user passes to `ner(article)`.

    python recipes/doc_context.py --work /tmp/ner-doc --words 64            # train and score
    python recipes/doc_context.py --work /tmp/ner-doc --words 64 --files-only

Scored twice: `clearpipe train`'s own test figures on the chunks, and here, per sentence: the
chunked test file tagged chunk by chunk and its tags cut back into the original sentences, so that
no entity can run across a sentence boundary and the count is conlleval's over `test.txt`.
"""

from __future__ import annotations

import argparse
import bisect
import json
from pathlib import Path

from train_ner import write_conll

from clearpipe.training.ner.read import DOCSTART, read_ner

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train", "valid", "test")

Sentence = tuple[list[str], list[str]]


def documents(path: Path) -> list[list[Sentence]]:
    """The file's articles, each a list of (words, tags) sentences as `read_ner` reads them (IOB2,
    checked), split wherever a -DOCSTART- line falls between two sentences."""
    with path.open(encoding="utf-8") as handle:
        starts = [number for number, line in enumerate(handle, start=1) if line.startswith(DOCSTART)]
    articles: dict[int, list[Sentence]] = {}
    for sentence in read_ner(path).sentences:
        articles.setdefault(bisect.bisect(starts, sentence.line), []).append(
            (list(sentence.words), list(sentence.tags))
        )
    return list(articles.values())


def chunks(doc: list[Sentence], limit: int) -> list[list[Sentence]]:
    """Consecutive sentences of one article, each group up to `limit` words (one longer sentence
    alone)."""
    groups: list[list[Sentence]] = []
    size = 0
    for sentence in doc:
        if groups and size + len(sentence[0]) <= limit:
            groups[-1].append(sentence)
            size += len(sentence[0])
        else:
            groups.append([sentence])
            size = len(sentence[0])
    return groups


def joined(group: list[Sentence]) -> Sentence:
    """A chunk's sentences as one: their words and their tags end to end."""
    return [w for words, _ in group for w in words], [t for _, tags in group for t in tags]


def write_chunks(source: Path, target: Path, limit: int) -> list[list[int]]:
    """`source` rewritten as chunks (one CoNLL "sentence" each) into `target`; returns every
    chunk's sentence lengths, to cut its tags back into sentences."""
    groups = [group for doc in documents(source) for group in chunks(doc, limit)]
    target.parent.mkdir(parents=True, exist_ok=True)
    write_conll(target, [joined(group) for group in groups])
    return [[len(words) for words, _ in group] for group in groups]


def per_sentence_scores(model: Path, chunked: Path, lengths: list[list[int]]) -> dict:
    """Tag `chunked` chunk by chunk with `model`, cut the tags back into sentences and score them
    as conlleval does (`clearpipe.training.ner.metrics`)."""
    import clearpipe
    from clearpipe.training.ner.metrics import score_entities

    rows = read_ner(chunked).sentences
    tagger = clearpipe.load(str(model))
    predicted = tagger.predict_word_tags([list(s.words) for s in rows])
    gold_sentences, predicted_sentences = [], []
    for row, tags, sizes in zip(rows, predicted, lengths, strict=True):
        start = 0
        for size in sizes:
            gold_sentences.append(list(row.tags[start : start + size]))
            predicted_sentences.append(tags[start : start + size])
            start += size
    return score_entities(gold_sentences, predicted_sentences).to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data" / "conll2003")
    parser.add_argument("--work", type=Path, default=Path("/tmp/clearpipe-ner-doc"))
    parser.add_argument("--words", type=int, default=64, help="Most words per chunk.")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--base", default="minilm-l6")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--teacher", help="A tagger trained on the same chunks, to distil from.")
    parser.add_argument("--files-only", action="store_true")
    args = parser.parse_args()
    folder = args.work / "data" / "conll2003"  # the folder name tells the card the data's terms
    files = {split: folder / f"{split}-doc{args.words}.txt" for split in SPLITS}
    lengths = {
        split: write_chunks(args.data_dir / f"{split}.txt", files[split], args.words) for split in SPLITS
    }
    for split in SPLITS:
        print(
            f"{split}: {len(lengths[split])} chunks of {sum(map(len, lengths[split]))} sentences", flush=True
        )
    if args.files_only:
        return
    from clearpipe.training.distill import Distillation
    from clearpipe.training.ner.train import train
    from clearpipe.training.train import CHECKPOINTS, TrainConfig

    output = args.work / f"{Path(args.base).name}-doc{args.words}"
    if not (output / "metrics.json").is_file():
        distillation = Distillation((args.teacher,), 2.0, 0.5) if args.teacher else None
        train(
            TrainConfig(
                data=str(files["train"]),
                validation=str(files["valid"]),
                test=str(files["test"]),
                base=args.base,
                output=str(output),
                epochs=args.epochs,
                learning_rate=args.learning_rate,
                batch_size=args.batch_size,
                seed=args.seed,
                distillation=distillation,
                resume=(output / CHECKPOINTS).is_dir() or (output / "teacher_logits").is_dir(),
            )
        )
    figures = {
        split: per_sentence_scores(output, files[split], lengths[split]) for split in ("valid", "test")
    }
    (output / "per_sentence.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    for split, scores in figures.items():
        print(f"{split}, per sentence: entity F1 {scores['overall']['f1']:.4f}", flush=True)


if __name__ == "__main__":
    main()
