"""`clearpipe train` on few rows per class: SetFit (`training.setfit`), saved as a folder every
clearpipe command serves, calibrated, scored and described like a fine-tuned one.

The validation rows `clearpipe train` would split off are too precious to hold out when a class
has 8 rows, so without a `--validation` file and below `CROSS_VALIDATE_BELOW` rows in a class,
SetFit trains on every row and the temperature and the reported figures come from
cross-validation (`setfit.out_of_fold_logits`); with more, the usual 10% split is held out.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from clearpipe import bases, pooled
from clearpipe.errors import InputError
from clearpipe.loading import model_max_length, quiet_transformers, resolve_source, uses_token_type_ids
from clearpipe.postprocess import Activation, activate
from clearpipe.training import report, setfit
from clearpipe.training.calibration import Calibration, calibrate_split, card_section, fit, write_calibration
from clearpipe.training.data import Split, TrainingData
from clearpipe.training.evaluation import Evaluation, evaluate_split
from clearpipe.training.features import length_stats
from clearpipe.training.metrics import evaluate_scores


def check(config, data: TrainingData) -> None:
    """Refuse what SetFit cannot do, before any work."""
    if config.distillation is not None:
        raise InputError("--teacher distils into a fine-tuned model; use it with --method finetune")
    if config.unlabeled:
        raise InputError("--unlabeled rows need a teacher; use them with --method finetune")
    counts = np.bincount(np.asarray(training_rows(data).labels), minlength=len(data.labels.names))
    single = [name for name, n in zip(data.labels.names, counts, strict=True) if n < 2]
    if single:
        raise InputError(
            f"{data.train.source}: class {', '.join(repr(n) for n in single)} has one row; few-shot "
            "training needs 2 rows or more per class (a same-class pair, and one to hold out)"
        )


CROSS_VALIDATE_BELOW = 32
"""Without a `--validation` file, a class with fewer rows than this leaves too few to hold out
(a 10% split keeps 3): every row is trained on and the temperature is cross-validated."""


def cross_validates(data: TrainingData) -> bool:
    """Whether the validation rows split off go back into training (see `CROSS_VALIDATE_BELOW`)."""
    if not data.report.validation_from_split:
        return False
    counts = np.bincount(np.asarray(data.train.labels + data.validation.labels))
    return int(counts[counts > 0].min()) < CROSS_VALIDATE_BELOW


def training_rows(data: TrainingData) -> Split:
    """Every labelled row SetFit learns from: the validation rows split off are given back when
    the temperature is cross-validated.

    >>> len(training_rows(data)) == len(data.train) + len(data.validation)  # doctest: +SKIP
    True
    """
    if not cross_validates(data):
        return data.train
    train, held = data.train, data.validation
    return Split(
        "train", train.source, train.items + held.items, train.labels + held.labels, train.rows + held.rows
    )


@dataclass(frozen=True)
class FewShotRun:
    """What `train_few_shot` did: optimizer steps, the metrics.json figures, wall time."""

    steps: int
    metrics: dict
    seconds: float


def train_few_shot(config, data: TrainingData, started: float, bf16: bool) -> FewShotRun:
    """Train by SetFit, save, calibrate, evaluate and report; `config` is a `TrainConfig`.

    >>> train_few_shot(TrainConfig(data="eight_per_class.csv", output="out"), data, time.monotonic(), False)  # doctest: +SKIP
    """
    output = Path(config.output)
    rows = training_rows(data)
    names = data.labels.names
    source = resolve_source(bases.resolve_base(config.base))
    settings = setfit.SetFitSettings(iterations=config.setfit_iterations, bf16=bf16)
    tokenizer, encoder = setfit.load_encoder(source)
    limit = model_max_length(encoder.config, tokenizer)
    if config.max_length is not None and not 2 <= config.max_length <= limit:
        raise InputError(
            f"--max-length must be between 2 and the model's limit of {limit}, got {config.max_length}"
        )
    lengths = length_stats(tokenizer, rows, limit, config.max_length, uses_token_type_ids(encoder, tokenizer))
    report.print_lengths(lengths)
    del encoder  # each run below loads the base afresh
    print(
        f"few-shot (SetFit): {len(rows)} rows, {settings.iterations} positive and negative pairs per row, "
        f"then a logistic-regression head",
        flush=True,
    )
    tuned = setfit.train_split(source, rows, len(names), lengths.max_length, settings, config.seed)
    print(f"encoder tuned: {tuned.steps} steps, pair loss {tuned.loss:.4f}", flush=True)
    model = pooled.from_encoder(
        tuned.encoder, torch.as_tensor(tuned.weight), torch.as_tensor(tuned.bias), list(names)
    )
    _save(model, tokenizer, output)
    evaluations, calibration = _calibrate_and_score(config, data, rows, source, settings, lengths.max_length)
    seconds = time.monotonic() - started
    _write_reports(
        output, config, data, rows, evaluations, calibration, tuned, settings, lengths.max_length, seconds
    )
    for name, ev in evaluations.items():
        print(
            f"{name}: accuracy {ev.accuracy:.4f}, macro-F1 {ev.macro_f1:.4f}, ECE {ev.ece:.4f} ({ev.rows} rows)"
        )
    print(f"saved to {output} ({tuned.steps} steps, {seconds:.0f} s)", flush=True)
    metrics = {name: ev.to_dict() for name, ev in evaluations.items()}
    if calibration is not None:
        metrics["calibration"] = calibration.to_dict()
    return FewShotRun(tuned.steps, metrics, seconds)


def _save(model, tokenizer, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    with quiet_transformers():
        model.save_pretrained(str(output))
        tokenizer.save_pretrained(str(output))


def _calibrate_and_score(
    config, data: TrainingData, rows: Split, source: str, settings: setfit.SetFitSettings, max_length: int
) -> tuple[dict[str, Evaluation], Calibration | None]:
    """The temperature (on `--validation` when given, else cross-validated) and the figures of
    the saved model on validation/test, or of the out-of-fold models when nothing was held out."""
    import clearpipe

    output = Path(config.output)
    calibration = None
    evaluations: dict[str, Evaluation] = {}
    held_out = not cross_validates(data)
    if held_out and config.calibrate:
        raw = clearpipe.load(str(output), device="auto", calibrated=False)
        try:
            calibration = calibrate_split(
                raw, data.validation, f"the validation rows of {data.validation.source}"
            )
        except InputError as exc:
            print(f"not calibrated: {exc}", flush=True)
    elif not held_out:
        logits = setfit.out_of_fold_logits(
            source, rows, len(data.labels.names), max_length, settings, config.seed
        )
        y = np.asarray(rows.labels)
        folds = (
            f"{min(settings.folds, int(np.unique(y, return_counts=True)[1].min()))}-fold out-of-fold logits"
        )
        if config.calibrate:
            calibration = fit(logits, y, f"{folds} of {len(y)} training rows")
        scaled = logits if calibration is None else calibration.scaling.apply(logits)
        probs = activate(scaled, Activation.SOFTMAX)
        evaluations["cross_validation"] = evaluate_scores(
            probs, y, data.labels.names, texts=rows.items, rows=rows.rows, n_errors=10
        )
    if calibration is not None:
        write_calibration(output, calibration)
        print(f"calibrated: {calibration.summary()}", flush=True)
    classifier = clearpipe.load(str(output), device="auto")
    if held_out:
        evaluations["validation"] = evaluate_split(classifier, data.validation, n_errors=10)
    if data.test is not None:
        evaluations["test"] = evaluate_split(classifier, data.test, n_errors=10)
    return evaluations, calibration


def _write_reports(
    output: Path,
    config,
    data: TrainingData,
    rows: Split,
    evaluations: dict[str, Evaluation],
    calibration: Calibration | None,
    tuned: setfit.Tuned,
    settings: setfit.SetFitSettings,
    max_length: int,
    seconds: float,
) -> None:
    from clearpipe.training import plots

    metrics = {name: ev.to_dict() for name, ev in evaluations.items()}
    if calibration is not None:
        metrics["calibration"] = calibration.to_dict()
    resolved = {
        "method": "setfit",
        "base": tuned.encoder.config._name_or_path,
        "max_length": max_length,
        "hidden": tuned.encoder.config.hidden_size,
        "rows": len(rows),
        "setfit": asdict(settings),
        "optimizer_steps": tuned.steps,
        "final_pair_loss": tuned.loss,
        "seconds": round(seconds, 1),
    }
    _write_json(output / "metrics.json", metrics)
    _write_json(
        output / "training_config.json",
        {"arguments": asdict(config), "resolved": resolved, "versions": report.library_versions()},
    )
    _write_json(
        output / "trace.json",
        {"version": report.TRACE_VERSION, "data": data.report.to_dict(), "resolved": resolved},
    )
    final = evaluations.get("test") or evaluations.get("validation") or evaluations.get("cross_validation")
    if final is not None:
        plots.confusion(final, output / "confusion_matrix.png")
    (output / "README.md").write_text(
        card(output, config, data, rows, evaluations, calibration, resolved), encoding="utf-8"
    )


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")


def card(
    output: Path, config, data: TrainingData, rows: Split, evaluations: dict, calibration, resolved: dict
) -> str:
    """The model card: data, the exact computation of the head, settings and figures."""
    names = data.labels.names
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "tags: [clearpipe, text-classification, setfit, few-shot]",
        "---",
        "",
        f"# {output.name}",
        "",
        f"A few-shot text classifier trained from `{resolved['base']}` by the SetFit method "
        f"(Tunstall et al., 2022) with `clearpipe train` on {datetime.now(UTC):%Y-%m-%d}, from "
        f"{len(rows)} labelled rows.",
        "",
        "## Labels",
        "",
        *[
            f"- `{i}`: {name} ({data.report.splits[0].label_counts.get(name, 0)} training rows)"
            for i, name in enumerate(names)
        ],
        "",
        "## How it computes a score",
        "",
        "1. The encoder (`AutoModel.from_pretrained` of this folder loads it with plain transformers; "
        "its weights sit under the family's usual prefix) runs on the tokenized text.",
        "2. The last layer's token vectors are averaged over the real tokens (`attention_mask` 1), "
        "and the average is scaled to unit length: `e = normalize(mean(h_t))`.",
        f"3. `logits = W e + b`, with `W` ({len(names)} x {resolved.get('hidden', 'hidden')}) and `b` "
        "the `head.weight` and `head.bias` tensors of `model.safetensors` (a logistic regression "
        "fitted on the training rows' embeddings).",
        "4. `softmax(logits / T)`, with the temperature `T` of `clearpipe_calibration` in config.json "
        "(1 when absent).",
        "",
        "`config.json` marks the folder with `clearpipe_head`, which is how `clearpipe.load` "
        'recognises it; `transformers.pipeline("text-classification")` cannot apply the mean '
        "pooling, so use clearpipe (or the four steps above).",
        "",
        "## Training",
        "",
        "| setting | value |",
        "| --- | --- |",
        f"| pairs per row (positive and negative each) | {resolved['setfit']['iterations']} |",
        f"| pair batch size | {resolved['setfit']['batch_size']} |",
        f"| learning rate | {resolved['setfit']['learning_rate']} |",
        f"| optimizer steps | {resolved['optimizer_steps']} |",
        f"| max length | {resolved['max_length']} |",
        f"| seed | {config.seed} |",
        f"| wall time (s) | {round(resolved['seconds'])} |",
        "",
        "## Results",
        "",
        "| set | rows | accuracy | macro-F1 | log loss | ECE |",
        "| --- | --- | --- | --- | --- | --- |",
        *[
            f"| {name} | {ev.rows} | {ev.accuracy:.4f} | {ev.macro_f1:.4f} | {ev.log_loss:.4f} | {ev.ece:.4f} |"
            for name, ev in evaluations.items()
        ],
        "",
    ]
    if "cross_validation" in evaluations:
        lines += [
            "`cross_validation`: each row scored by a model trained (encoder and head) without it; "
            "the saved model was trained on every row.",
            "",
        ]
    if calibration is not None:
        lines += [*card_section(calibration)[:-1], ""]
    lines += [
        "## Use",
        "",
        "```python",
        "import clearpipe",
        f'clf = clearpipe.load("{output.name}")',
        'clf("I love this movie!")',
        "```",
        "",
    ]
    return "\n".join(lines)
