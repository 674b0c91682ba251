"""`clearpipe train` on few rows per class: SetFit (`training.setfit`), saved as a folder every
clearpipe command serves, calibrated, scored and described like a fine-tuned one.

The validation rows `clearpipe train` would split off are too precious to hold out when a class
has 8 rows, so without a `--validation` file, below `CROSS_VALIDATE_BELOW` rows in a class or
when a 10% split would hold fewer than `MIN_ROWS` rows, SetFit trains on every row and the
temperature and the reported figures come from cross-validation (`setfit.out_of_fold_logits`);
with more, the usual 10% split is held out.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer

from clearpipe import bases, pooled
from clearpipe.errors import InputError
from clearpipe.loading import model_max_length, quiet_transformers, resolve_source, uses_token_type_ids
from clearpipe.postprocess import Activation, Temperature, activate
from clearpipe.preprocess import tokenize
from clearpipe.training import report, setfit
from clearpipe.training.calibration import MIN_ROWS, Calibration, card_section, fit, nll, write_calibration
from clearpipe.training.data import Split, TrainingData
from clearpipe.training.evaluation import Evaluation, evaluate_split
from clearpipe.training.features import length_stats
from clearpipe.training.metrics import evaluate_scores, expected_calibration_error


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
    """Whether the validation rows split off go back into training: below `CROSS_VALIDATE_BELOW`
    rows in a class, or when the split holds fewer rows than a temperature needs (`MIN_ROWS`).
    At 64 rows per class SST-2's split kept 13 rows; the contrastive encoder makes the head's
    scores far too sure (T fitted at its bound, 20), the 13 rows could only shrink it to about
    1.5-1.9, and test ECE was 16-18% over two seeds."""
    if not data.report.validation_from_split:
        return False
    counts = np.bincount(np.asarray(data.train.labels + data.validation.labels))
    few_in_a_class = int(counts[counts > 0].min()) < CROSS_VALIDATE_BELOW
    return few_in_a_class or len(data.validation.labels) < MIN_ROWS


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
    if len(rows) > len(data.train):
        # the data report above listed a validation split; say where its rows went
        print(
            f"  the {len(data.validation)} validation rows split off go back into training (too few to hold "
            f"out); the temperature is cross-validated on {setfit.fold_count(rows.labels, settings)} folds instead",
            flush=True,
        )
    prompt_names = list(names) if config.label_prior else None
    tuned = setfit.train_split(source, rows, prompt_names, lengths.max_length, settings, config.seed)
    print(f"encoder tuned: {tuned.steps} steps, pair loss {tuned.loss:.4f}", flush=True)
    fitted = setfit.heads(tuned, rows.labels, len(names), settings, config.seed)
    held = _held_out(config, data, rows, source, settings, lengths.max_length, tuned, fitted)
    choice, calibration = _choose(held, names)
    print(f"head: {_head_name(choice)}", flush=True)
    weight, bias = fitted[choice]
    model = pooled.from_encoder(tuned.encoder, torch.as_tensor(weight), torch.as_tensor(bias), list(names))
    _save(model, tokenizer, output)
    if calibration is not None and config.calibrate:
        write_calibration(output, calibration)
        print(f"calibrated: {calibration.summary()}", flush=True)
    else:
        calibration = None
    evaluations = _score(data, rows, held, choice, calibration, output)
    seconds = time.monotonic() - started
    resolved = _resolved(tuned, settings, lengths.max_length, rows, seconds, choice)
    _write_reports(output, config, data, rows, evaluations, calibration, resolved)
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


@dataclass(frozen=True)
class HeldOut:
    """Logits of rows the scoring model never trained on, per candidate head, and what they are."""

    logits: dict
    y: np.ndarray
    fitted_on: str
    split: Split
    cross_validated: bool


def _held_out(config, data, rows, source, settings, max_length, tuned, fitted: dict) -> HeldOut:
    """Out-of-fold logits (few rows), or the `fitted` heads' on the tuned encoder's validation rows."""
    names = list(data.labels.names) if config.label_prior else None
    if cross_validates(data):
        logits = setfit.held_out_logits(source, rows, names, max_length, settings, config.seed)
        y = np.asarray(rows.labels)
        folds = min(settings.folds, int(np.unique(y, return_counts=True)[1].min()))
        return HeldOut(logits, y, f"{folds}-fold out-of-fold logits of {len(y)} training rows", rows, True)
    tokenizer = AutoTokenizer.from_pretrained(source)
    use_types = uses_token_type_ids(tuned.encoder, tokenizer)
    tokenized = tokenize(tokenizer, data.validation.items, max_length, use_types)
    x = setfit.embed(tuned.encoder, tokenized, tokenizer.pad_token_id or 0, tokenizer.padding_side)
    logits = {c: x @ w.T + b for c, (w, b) in fitted.items()}
    where = f"the validation rows of {data.validation.source}"
    return HeldOut(logits, np.asarray(data.validation.labels), where, data.validation, False)


def _choose(held: HeldOut, names) -> tuple[float | None, Calibration | None]:
    """The candidate head whose held-out log loss, at its own fitted temperature, is lowest, and
    that temperature; SetFit's plain head when no temperature can be fitted on these rows."""
    # Fewer rows than `clearpipe calibrate` accepts (50): these are all there are, and a
    # temperature from them beats none (the plain head's raw scores were off by 10 points of ECE).
    if len(np.unique(held.y)) < 2 or len(held.y) < 4:
        print(f"not calibrated, plain head: {held.fitted_on} hold too few rows or one class", flush=True)
        return None, None
    few = len(held.y) < MIN_ROWS
    method = "temperature" if few else "auto"  # a margin's second parameter needs more rows
    fits = {c: fit(logits, held.y, held.fitted_on, method) for c, logits in held.logits.items()}
    for c, found in fits.items():
        print(f"  {_head_name(c)}: held-out log loss {found.nll_after:.4f}", flush=True)
    choice = min(fits, key=lambda c: fits[c].nll_after)
    if few:
        return choice, _shrunk(fits[choice], held.logits[choice], held.y)
    return choice, fits[choice]


def _shrunk(found: Calibration, logits: np.ndarray, y: np.ndarray) -> Calibration:
    """A temperature fitted on n < `MIN_ROWS` rows, shrunk toward 1 in log space as if `MIN_ROWS`
    more rows had said 1: T^(n / (n + MIN_ROWS)). Sixteen out-of-fold rows of SST-2 fitted T from
    0.05 to 0.83 over five seeds; taken at face value, test ECE reached 38%."""
    n = len(y)
    value = float(found.temperature ** (n / (n + MIN_ROWS)))
    scaling = Temperature(value)
    probs = activate(scaling.apply(np.asarray(logits, dtype=np.float64)), Activation.SOFTMAX)
    return replace(
        found,
        scaling=scaling,
        fitted_on=f"{found.fitted_on}, shrunk toward 1 from {found.temperature:.3f} ({n} rows < {MIN_ROWS})",
        ece_after=expected_calibration_error(probs.max(1), probs.argmax(1) == y),
        nll_after=round(nll(logits, y, scaling), 6),
    )


def _head_name(choice: float | None) -> str:
    if choice is None:
        return "logistic regression (SetFit's)"
    return f"logistic regression pulled toward the label names' zero-shot head (c = {choice})"


def _score(data, rows, held: HeldOut, choice, calibration, output: Path) -> dict[str, Evaluation]:
    """The chosen head's held-out figures (out-of-fold, or the saved model on validation) and test."""
    import clearpipe

    evaluations: dict[str, Evaluation] = {}
    if held.cross_validated:
        logits = held.logits[choice]
        scaled = logits if calibration is None else calibration.scaling.apply(logits)
        probs = activate(scaled, Activation.SOFTMAX)
        evaluations["cross_validation"] = evaluate_scores(
            probs, held.y, data.labels.names, texts=rows.items, rows=rows.rows, n_errors=10
        )
    classifier = clearpipe.load(str(output), device="auto")
    if not held.cross_validated:
        evaluations["validation"] = evaluate_split(classifier, data.validation, n_errors=10)
    if data.test is not None:
        evaluations["test"] = evaluate_split(classifier, data.test, n_errors=10)
    return evaluations


def _resolved(tuned, settings, max_length: int, rows: Split, seconds: float, choice) -> dict:
    return {
        "method": "setfit",
        "base": tuned.encoder.config._name_or_path,
        "max_length": max_length,
        "hidden": tuned.encoder.config.hidden_size,
        "rows": len(rows),
        "setfit": asdict(settings),
        "head": _head_name(choice),
        "label_prior": choice,
        "optimizer_steps": tuned.steps,
        "final_pair_loss": tuned.loss,
        "seconds": round(seconds, 1),
    }


def _write_reports(
    output: Path,
    config,
    data: TrainingData,
    rows: Split,
    evaluations: dict[str, Evaluation],
    calibration: Calibration | None,
    resolved: dict,
) -> None:
    from clearpipe.training import plots

    metrics = {name: ev.to_dict() for name, ev in evaluations.items()}
    if calibration is not None:
        metrics["calibration"] = calibration.to_dict()
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
        "the `head.weight` and `head.bias` tensors of `model.safetensors`: a "
        f"{resolved['head']} fitted on the training rows' embeddings, chosen among the candidates "
        "by held-out log loss.",
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
