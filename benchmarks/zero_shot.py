"""Zero-shot by similarity: how its defaults were chosen, what they score, and how fast it runs.

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/zero_shot.py [--part select|test|speed|all]

* select: on held-out rows (`--rows` from SST-2 dev and from AG News train: AG News has no dev
  split), the accuracy of each candidate template with the datasets' label names and with one
  description per label, and the softmax temperature and the multi-label scale/threshold fitted
  by log loss over all four (dataset x names/descriptions) sets together. These fix
  `clearpipe.zeroshot.scoring`'s defaults.
* test: accuracy and ECE (15 bins) on the full test splits (SST-2 872, AG News 7,600) with the
  defaults, names and descriptions; for multi_label, the per-label decision accuracy and ECE.
* centring: on the select rows, with the default template, whether centring the embeddings
  before the cosine helps: labels on their mean (a hubness correction), texts on a corpus mean
  (the other dataset's texts: a mean from text other than the task's), and texts and labels on
  the task's own texts' mean (transductive: it needs the whole batch first). Not run by "all".
* speed: texts/s of zero-shot with 10 labels against `classify` on the same encoder (the
  all-MiniLM-L6-v2 body under a sequence-classification head), same texts, same process.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TEMPLATES = [
    "This example is {}.",
    "{}",
    "This text is about {}.",
    "This is {}.",
    "It is {}.",
    "The topic is {}.",
    "This is about {}.",
    "{} text.",
    "This text is {}.",
    "A {} text.",
    "Topic: {}.",
    "This is a {} example.",
    "Something {}.",
]
NAMES = {"sst2": ["negative", "positive"], "agnews": ["World", "Sports", "Business", "Sci/Tech"]}
DESCRIPTIONS = {
    "sst2": ["a negative opinion: the movie is bad", "a positive opinion: the movie is good"],
    "agnews": [
        "news about world politics, countries and conflicts",
        "news about sports, teams and games",
        "news about business, companies, markets and the economy",
        "news about science, technology, computers and the internet",
    ],
}
TEN_LABELS = "World,Sports,Business,Sci/Tech,Health,Entertainment,Politics,Travel,Food,Weather"


def read(dataset: str, split: str) -> tuple[list[str], np.ndarray]:
    """Texts and label ids (in `NAMES` order) of a split, read without CSV quoting."""
    import pandas as pd

    frame = pd.read_csv(
        DATA / dataset / f"{split}.tsv", sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, dtype=str
    )
    column = "sentence" if dataset == "sst2" else "text"
    ids = frame["label"].map(lambda v: int(v) if dataset == "sst2" else NAMES["agnews"].index(v))
    return frame[column].tolist(), ids.to_numpy()


def held_out(rows: int) -> dict[str, tuple[list[str], np.ndarray]]:
    picked = {}
    for dataset, split in (("sst2", "dev"), ("agnews", "train")):
        texts, y = read(dataset, split)
        order = np.random.default_rng(0).permutation(len(texts))[:rows]
        picked[dataset] = ([texts[i] for i in order], y[order])
    return picked


def labels_of(dataset: str, described: bool):
    from clearpipe.zeroshot import Label

    if not described:
        return [Label(name) for name in NAMES[dataset]]
    return [Label(n, d) for n, d in zip(NAMES[dataset], DESCRIPTIONS[dataset], strict=True)]


def similarities(clf, embedded: np.ndarray, dataset: str, described: bool, template: str) -> np.ndarray:
    """(texts, labels) cosines: the texts' embeddings against the cached label prompts."""
    return embedded @ clf.label_embeddings(labels_of(dataset, described), template).T


def select(clf, rows: int) -> None:
    from scipy.optimize import minimize, minimize_scalar

    data = held_out(rows)
    embedded = {d: clf.embed(texts) for d, (texts, _) in data.items()}
    print(f"held-out rows: {rows} SST-2 dev, {rows} AG News train; accuracy by template")
    print(f"{'template':26} {'sst2 names':>10} {'ag names':>9} {'sst2 desc':>9} {'ag desc':>8} {'mean':>6}")
    best = (0.0, "")
    for template in TEMPLATES:
        accs = [
            float(np.mean(similarities(clf, embedded[d], d, described, template).argmax(1) == data[d][1]))
            for described in (False, True)
            for d in ("sst2", "agnews")
        ]
        mean = float(np.mean(accs))
        best = max(best, (mean, template))
        print(f"{template!r:26} " + " ".join(f"{a:9.3f}" for a in accs) + f" {mean:6.3f}")
    template = best[1]
    sets = [
        (similarities(clf, embedded[d], d, described, template), data[d][1])
        for d in ("sst2", "agnews")
        for described in (False, True)
    ]
    fit = minimize_scalar(
        lambda t: sum(_nll(s / t, y) for s, y in sets[0::2]), bounds=(1e-3, 1.0), method="bounded"
    )  # label names; descriptions get their own temperature (they spread the similarities wider)
    described = minimize_scalar(
        lambda t: sum(_nll(s / t, y) for s, y in sets[1::2]), bounds=(1e-3, 1.0), method="bounded"
    )
    cos = np.concatenate([s.ravel() for s, _ in sets])
    truth = np.concatenate([np.eye(s.shape[1])[y].ravel() for s, y in sets])
    multi = minimize(lambda p: _bce(p[0] * (cos - p[1]), truth), [10.0, 0.2], method="Nelder-Mead")
    print(
        f"best template {template!r} (mean {best[0]:.3f}); softmax temperature {fit.x:.4f} for names, "
        f"{described.x:.4f} for descriptions"
    )
    print(
        f"multi_label: sigmoid(scale x (cos - threshold)), scale {multi.x[0]:.2f}, threshold {multi.x[1]:.3f}"
    )


def test(clf) -> None:
    from clearpipe.training.metrics import ECE_BINS, expected_calibration_error

    print(f"test splits, template {clf.template!r}, {clf.scoring}; ECE over {ECE_BINS} bins")
    for dataset in ("sst2", "agnews"):
        texts, y = read(dataset, "test")
        started = time.perf_counter()
        embedded = clf.embed(texts)
        seconds = time.perf_counter() - started
        for described in (False, True):
            sims = similarities(clf, embedded, dataset, described, clf.template)
            probs = clf.scoring.probabilities(sims, multi_label=False, described=described)
            correct = probs.argmax(1) == y
            ece = expected_calibration_error(probs.max(1), correct)
            applies = clf.scoring.probabilities(sims, multi_label=True)
            truth = np.eye(sims.shape[1], dtype=bool)[y]
            decided = (applies >= 0.5) == truth
            binary = np.where(applies >= 0.5, applies, 1 - applies)
            multi_ece = expected_calibration_error(binary.ravel(), decided.ravel())
            kind = "descriptions" if described else "names"
            print(
                f"{dataset:7} {kind:12} rows {len(texts):5}  accuracy {correct.mean():.4f}  ECE {ece:.4f}  "
                f"| multi_label per-label accuracy {decided.mean():.4f} ECE {multi_ece:.4f}"
            )
        print(f"{dataset:7} embedded {len(texts)} texts in {seconds:.1f} s")


def speed(clf, rows: int, passes: int) -> None:
    import clearpipe

    texts, _ = read("agnews", "test")
    texts = texts[:rows]
    with tempfile.TemporaryDirectory() as folder:
        classifier = clearpipe.load(_headed(clf.source, Path(folder)))
        labels = clf.labels(TEN_LABELS)
        runs = {
            "classify": lambda: classifier.predict_items(texts),
            "zero-shot, 10 labels": lambda: clf.predict(texts, labels),
            "embed": lambda: clf.embed(texts),
        }
        for run in runs.values():
            run()  # warm: kernels chosen, label prompts embedded once
        times = {name: [] for name in runs}
        for _ in range(passes):  # interleaved, so that the machine's drift hits all alike
            for name, run in runs.items():
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    rate = {name: len(texts) / statistics.median(t) for name, t in times.items()}
    print(
        f"speed on {len(texts)} AG News test texts, median of {passes} passes, dtype {classifier.settings.dtype}"
    )
    for name, r in rate.items():
        print(f"  {name:22} {r:8.1f} texts/s   {r / rate['classify']:.2f}x classify")


def _headed(encoder: str, folder: Path) -> Path:
    """The encoder under a 4-label sequence-classification head (random: only speed is measured)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(encoder, num_labels=4)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(folder)
    return folder


def centring(clf, rows: int) -> None:
    data = held_out(rows)
    embedded = {d: clf.embed(texts) for d, (texts, _) in data.items()}
    mean = {d: e.mean(0) for d, e in embedded.items()}
    other = {"sst2": mean["agnews"], "agnews": mean["sst2"]}

    def unit(x: np.ndarray) -> np.ndarray:
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    variants = {
        "plain cosine": lambda t, lab, d: t @ lab.T,
        "labels centred on their mean": lambda t, lab, d: t @ unit(lab - lab.mean(0)).T,
        "texts centred on the other set's mean": lambda t, lab, d: unit(t - other[d]) @ lab.T,
        "both centred on the other set's mean": lambda t, lab, d: unit(t - other[d]) @ unit(lab - other[d]).T,
        "both centred on own texts' mean": lambda t, lab, d: unit(t - mean[d]) @ unit(lab - mean[d]).T,
    }
    print(f"held-out rows: {rows} + {rows}; template {clf.template!r}; accuracy")
    print(f"{'variant':40} {'sst2 names':>10} {'ag names':>9} {'sst2 desc':>9} {'ag desc':>8} {'mean':>6}")
    for name, score in variants.items():
        accs = [
            float(
                np.mean(
                    score(embedded[d], clf.label_embeddings(labels_of(d, desc), clf.template), d).argmax(1)
                    == data[d][1]
                )
            )
            for desc in (False, True)
            for d in ("sst2", "agnews")
        ]
        print(f"{name:40} " + " ".join(f"{a:9.3f}" for a in accs) + f" {np.mean(accs):6.3f}")


def _nll(logits: np.ndarray, y: np.ndarray) -> float:
    z = logits - logits.max(1, keepdims=True)
    return float(-np.mean(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1))))


def _bce(z: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.logaddexp(0, z) - truth * z))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("select", "test", "speed", "centring", "all"), default="all")
    parser.add_argument("--model", default=None, help="sentence encoder (default all-MiniLM-L6-v2)")
    parser.add_argument("--rows", type=int, default=600, help="held-out rows per dataset for select")
    parser.add_argument("--speed-rows", type=int, default=512)
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    from clearpipe.zeroshot import load_zero_shot

    clf = load_zero_shot(args.model)
    if args.part in ("select", "all"):
        select(clf, args.rows)
    if args.part in ("test", "all"):
        test(clf)
    if args.part == "centring":
        centring(clf, args.rows)
    if args.part in ("speed", "all"):
        speed(clf, args.speed_rows, args.passes)


if __name__ == "__main__":
    main()
