"""Few-shot head choice: every candidate head's held-out and test figures, per seed.

    HF_HUB_OFFLINE=1 PYTHONPATH=src python benchmarks/few_shot_heads.py [--datasets sst2,agnews]
        [--k 8] [--seeds 5] [--base minilm-l6] [--results FILE] [--logits DIR]

`clearpipe train` fits several heads on the tuned encoder (SetFit's logistic regression, and
three pulled toward the label names' zero-shot head) and keeps the one with the lowest
out-of-fold log loss at its own fitted temperature (`training.fewshot._choose`). This script
runs the same steps as `clearpipe train --method setfit` on k rows per class (sampled as
`benchmarks/few_shot.py` samples them), and for every candidate head records what the choice
sees (out-of-fold log loss at its temperature, out-of-fold accuracy, the fitted and shrunk
temperatures) beside what the user gets (test accuracy, and test ECE raw, at the shrunk
temperature and at the fitted one), so that a choice rule and a calibration rule can be judged
on test figures without training again. With `--logits DIR`, each run's embeddings are saved
there (`{dataset}_{k}_{seed}.npz`: the training rows, the label prompts and the test rows under
the tuned encoder, and each fold's rows and embeddings), so that a new head can be tried on them.

One JSON line per (dataset, k, seed) is appended to `--results`, and skipped when the script
runs again. `--replay DIR` fits the heads of `setfit.HEADS` again on the embeddings saved in DIR
and prints each head's test accuracy and the held-out choice's, without training: how a new
candidate head is judged.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from few_shot import NAMES, read, sample  # benchmarks/ is the script's directory


def run(dataset: str, k: int, seed: int, base: str | None, logits_dir: Path | None) -> dict:
    """One seed: the SetFit steps of `clearpipe train`, every head scored out of fold and on test."""
    from clearpipe import bases
    from clearpipe.loading import resolve_source, uses_token_type_ids
    from clearpipe.postprocess import Activation, activate
    from clearpipe.preprocess import tokenize
    from clearpipe.training import fewshot, setfit
    from clearpipe.training.calibration import fit
    from clearpipe.training.data import Split
    from clearpipe.training.metrics import expected_calibration_error
    from clearpipe.training.train import bf16_supported

    names = sorted(NAMES[dataset])  # `clearpipe train` numbers labels in sorted order
    rows = sample(dataset, k, seed)
    split = Split(
        "train", dataset, [t for t, _ in rows], [names.index(n) for _, n in rows], list(range(len(rows)))
    )
    texts, labels = read(dataset, "test")
    y_test = np.asarray([names.index(n) for n in labels])
    source = resolve_source(bases.resolve_base(base))
    settings = setfit.SetFitSettings(bf16=bf16_supported())
    started = time.perf_counter()
    tuned = setfit.train_split(source, split, names, 256, settings, seed)
    fitted = setfit.heads(tuned, split.labels, len(names), settings, seed)
    y = np.asarray(split.labels)
    saved = {"y": y, "y_test": y_test, "x": tuned.x, "prompts": tuned.prompts}

    def saving(trained):  # each fold's rows and embeddings go into `saved` as it passes
        for i, fold in enumerate(trained):
            saved.update({f"fold{i}_kept": fold.kept, f"fold{i}_held": fold.held, f"fold{i}_x": fold.tuned.x})
            saved.update({f"fold{i}_x_held": fold.x_held, f"fold{i}_prompts": fold.tuned.prompts})
            yield fold

    oof = setfit.out_of_fold(
        saving(setfit.folds(source, split, names, 256, settings, seed)), y, len(names), settings, seed
    )
    tokenizer = tokenizer_of(source)
    use_types = uses_token_type_ids(tuned.encoder, tokenizer)
    pad = tokenizer.pad_token_id or 0
    x_test = setfit.embed(
        tuned.encoder, tokenize(tokenizer, texts, 256, use_types), pad, tokenizer.padding_side
    )
    saved["x_test"] = x_test
    heads = {}
    for candidate, (weight, bias) in fitted.items():
        found = fit(oof[candidate], y, "out-of-fold", "temperature")
        shrunk = fewshot._shrunk(found, oof[candidate], y)
        test = x_test @ weight.T + bias
        scores = {}
        for name, scaling in (("raw", None), ("shrunk", shrunk.scaling), ("fitted", found.scaling)):
            z = test if scaling is None else scaling.apply(test)
            p = activate(z, Activation.SOFTMAX)
            scores[name] = round(expected_calibration_error(p.max(1), p.argmax(1) == y_test), 4)
        heads[str(candidate)] = {
            "oof_nll": round(found.nll_after, 4),
            "oof_accuracy": round(float((oof[candidate].argmax(1) == y).mean()), 4),
            "t_fitted": round(found.temperature, 4),
            "t_shrunk": round(shrunk.temperature, 4),
            "test_accuracy": round(float((test.argmax(1) == y_test).mean()), 4),
            "test_ece": scores,
        }
    if logits_dir is not None:
        logits_dir.mkdir(parents=True, exist_ok=True)
        np.savez(logits_dir / f"{dataset}_{k}_{seed}.npz", **saved)
    chosen = min(heads, key=lambda c: heads[c]["oof_nll"])
    return {"chosen": chosen, "heads": heads, "seconds": round(time.perf_counter() - started, 1)}


def replay(folder: Path, dataset: str, k: int) -> None:
    """Every head in `setfit.HEADS`, and the held-out choice among them, fitted again on the
    embeddings a run saved (`--logits`): test accuracy per seed, no training."""
    from clearpipe.training import setfit
    from clearpipe.training.calibration import fit

    settings = setfit.SetFitSettings()
    found: dict = {}
    chosen = []
    for path in sorted(folder.glob(f"{dataset}_{k}_*.npz")):
        saved = np.load(path)
        y, y_test = saved["y"], saved["y_test"]
        labels = int(max(y.max(), y_test.max())) + 1
        seed = int(path.stem.rsplit("_", 1)[1])
        trained = [
            setfit.Fold(
                saved[f"fold{i}_kept"],
                saved[f"fold{i}_held"],
                setfit.Tuned(None, saved[f"fold{i}_x"], saved[f"fold{i}_prompts"], 0, 0.0),
                saved[f"fold{i}_x_held"],
            )
            for i in range(settings.folds)
        ]
        oof = setfit.out_of_fold(trained, y, labels, settings, seed)
        tuned = setfit.Tuned(None, saved["x"], saved["prompts"], 0, 0.0)
        accuracy = {}
        for c, (w, b) in setfit.heads(tuned, y, labels, settings, seed).items():
            accuracy[c] = float(((saved["x_test"] @ w.T + b).argmax(1) == y_test).mean())
            found.setdefault(c, []).append(accuracy[c])
        best = min(oof, key=lambda c: fit(oof[c], y, "out-of-fold", "temperature").nll_after)
        chosen.append(accuracy[best])
    print(f"{dataset}, k = {k}, {len(chosen)} seeds: test accuracy, mean (per seed)")
    for c, values in found.items():
        print(f"  head {c!s:8} {np.mean(values):.4f}  ({' '.join(f'{v:.3f}' for v in values)})")
    print(f"  held-out choice {np.mean(chosen):.4f}  ({' '.join(f'{v:.3f}' for v in chosen)})")


def tokenizer_of(source: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", default="sst2,agnews")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--base", default=None, help="a named base or folder; default minilm-l6")
    parser.add_argument("--results", type=Path, default=Path("benchmarks/results/few_shot_heads.jsonl"))
    parser.add_argument("--logits", type=Path, default=None, help="save each run's embeddings here")
    parser.add_argument("--replay", type=Path, default=None, help="re-fit the heads on embeddings saved here")
    args = parser.parse_args()
    if args.replay is not None:
        for dataset in args.datasets.split(","):
            replay(args.replay, dataset, args.k)
        return
    base = args.base or "minilm-l6"
    finished = set()
    if args.results.exists():
        for line in args.results.read_text().splitlines():
            r = json.loads(line)
            finished.add((r["dataset"], r["k"], r["seed"], r["base"]))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    for dataset in args.datasets.split(","):
        for seed in range(args.seeds):
            if (dataset, args.k, seed, base) in finished:
                continue
            found = run(dataset, args.k, seed, args.base, args.logits)
            line = {"dataset": dataset, "k": args.k, "seed": seed, "base": base, **found}
            print(json.dumps(line), flush=True)
            with args.results.open("a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
