"""Train a named-entity tagger: `train(TrainConfig(data="train.conll", ...))` fine-tunes an
`AutoModelForTokenClassification` with transformers' Trainer, keeps the epoch with the best
entity F1 on validation, and writes the checkpoint with its metrics and model card.

It shares `TrainConfig` and the run's plumbing (output checks, resume, arguments, saving) with
sequence classification in `clearpipe.training.train`; the settings that only mean something
there (label columns, class weights, hidden-state distillation, SetFit's --method setfit,
--setfit-iterations and --label-prior) are refused by name. `--teacher` works: the student
learns each word's tags from the teacher's (`ner.distill`), on the labelled sentences and on
`--unlabeled` ones (`ner.unlabeled`), which the teacher alone tags.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Collection, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer, Trainer, TrainerCallback, set_seed

import clearpipe
from clearpipe.errors import InputError
from clearpipe.loading import load_config, model_max_length, quiet_transformers, resolve_source
from clearpipe.training import bases, calibration
from clearpipe.training.data import DataOptions
from clearpipe.training.ner import distill as ner_distill
from clearpipe.training.ner import features
from clearpipe.training.ner.data import NerData, print_report, read_ner_data
from clearpipe.training.ner.evaluation import evaluate_model, labelled_words
from clearpipe.training.ner.metrics import score_entities
from clearpipe.training.ner.report import EpochTable, NerRun, write_run
from clearpipe.training.ner.tags import OUTSIDE
from clearpipe.training.ner.unlabeled import read_unlabeled_words

# The run's plumbing is shared with sequence classification rather than copied.
from clearpipe.training.train import (
    CHECKPOINTS,
    TrainConfig,
    TrainResult,
    _best_epoch,
    _check_output,
    _cleaned_on_failure,
    _early_stopping,
    _quiet_progress,
    _resume_point,
    _save,
    _training_arguments,
    is_main_process,
)

SELECTION = "f1"  # entity F1 on validation picks the epoch kept


def train(config: TrainConfig, callbacks: list[TrainerCallback] | None = None) -> TrainResult:
    """Fine-tune `config.base` (default minilm-l6) on the named-entity file `config.data`.

    >>> result = train(TrainConfig(data="train.txt", validation="valid.txt", output="ner"))  # doctest: +SKIP
    >>> result.metrics["validation"]["overall"]["f1"]  # doctest: +SKIP
    0.89
    """
    refuse_unused(config)
    if config.unlabeled and config.distillation is None:
        raise InputError("--unlabeled sentences learn from a teacher: pass --teacher too")
    output = Path(config.output)
    _check_output(output, config.resume)
    with _cleaned_on_failure(output):
        return _train(config, callbacks)


SETFIT_FLAGS = {
    "method": "--method",
    "setfit_iterations": "--setfit-iterations",
    "label_prior": "--label-prior",
}
"""Flags of few-shot (SetFit) training, by TrainConfig field: a tagger is always fine-tuned whole."""


def refuse_unused(config: TrainConfig, given: Collection[str] = ()) -> None:
    """Raise `InputError` naming every classification-only setting in `config`: those away from
    their defaults, and the fields in `given` (flags the command line set, even to their default:
    `--label-prior`, `--setfit-iterations 20`), except `--method auto`/`finetune`.

    >>> refuse_unused(TrainConfig(data="d.conll", output="m", method="setfit"))
    Traceback (most recent call last):
    clearpipe.errors.InputError: --method setfit (a tagger is fine-tuned whole): not used by named-entity training; leave them out
    """
    defaults = TrainConfig(data="", output="")
    prior = "--label-prior" if config.label_prior else "--no-label-prior"
    unused = {
        "--text-column/--label-column/--label-names/--multi-label": config.data_options
        != DataOptions(encoding=config.data_options.encoding, seed=config.data_options.seed),
        "--class-weights": config.class_weights != defaults.class_weights,
        "--metric (entity F1 picks the epoch)": config.metric != defaults.metric,
        "--distill-hidden (words are taught by their logits)": config.distillation is not None
        and config.distillation.hidden_weight > 0,
        f"--method {config.method} (a tagger is fine-tuned whole)": config.method not in ("auto", "finetune"),
        "--setfit-iterations": "setfit_iterations" in given
        or config.setfit_iterations != defaults.setfit_iterations,
        prior: "label_prior" in given or config.label_prior != defaults.label_prior,
    }
    named = [flag for flag, given in unused.items() if given]
    if named:
        raise InputError(f"{', '.join(named)}: not used by named-entity training; leave them out")


def _train(config: TrainConfig, callbacks: list[TrainerCallback] | None) -> TrainResult:
    started = time.monotonic()
    output = Path(config.output)
    main = is_main_process()
    data = read_ner_data(
        config.data, config.validation, config.test, config.data_options.encoding, config.data_options.seed
    )
    # Read before the base loads, so a bad file fails at once.
    more = read_unlabeled_words(config.unlabeled, config.data_options.encoding) if config.unlabeled else None
    unlabeled = more.sentences if more else []
    if main:
        print_report(data)
    if main and more:
        print(
            f"  unlabeled  {more.source} ({more.format}): {len(unlabeled)} sentences, {more.tokens} "
            "tokens, tagged by the teacher alone",
            flush=True,
        )
    source = resolve_source(bases.resolve_base(config.base))
    set_seed(config.seed)  # the new tagging head is drawn from the global generator
    tokenizer, model = _load_base(source, data.tags)
    max_length = _max_length(config, model, tokenizer)
    teacher = None
    if config.distillation is not None:
        config.distillation.check()
        teacher = ner_distill.teacher_word_logits(
            config.distillation, data.train, data.tags, output, unlabeled
        )
    train_ds = features.to_dataset(tokenizer, data.train, data.tags, max_length, teacher, unlabeled)
    val_ds = features.to_dataset(tokenizer, data.validation, data.tags, max_length)
    if main:
        cut = features.truncated(train_ds, [s.words for s in data.train] + unlabeled)
        print(f"max length {max_length} tokens; {cut} training sentences truncated", flush=True)
    table = EpochTable(enabled=main)
    trainer_class, extra = Trainer, {}
    if config.distillation is not None:
        trainer_class, extra = ner_distill.TokenDistillationTrainer, {"distillation": config.distillation}
    trainer = trainer_class(
        model=model,
        args=_training_arguments(config, output, SELECTION),
        data_collator=features.Collator(tokenizer),
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tokenizer,
        compute_metrics=_metrics_fn(data.tags),
        preprocess_logits_for_metrics=_argmax,
        callbacks=[table, *_early_stopping(config), *(callbacks or [])],
        **extra,
    )
    _quiet_progress(trainer)
    with quiet_transformers():
        trainer.train(resume_from_checkpoint=_resume_point(output, config.resume))
    if not trainer.is_world_process_zero():
        return TrainResult(output, trainer.state.global_step, None, {}, time.monotonic() - started)
    return _finish(config, trainer, data, table, max_length, started, len(unlabeled))


def _load_base(source: str, tags: list[str]):
    load_config(source)  # turns a missing or unreachable base into a CheckpointError
    tokenizer = AutoTokenizer.from_pretrained(source)
    with quiet_transformers():
        model = AutoModelForTokenClassification.from_pretrained(
            source,
            num_labels=len(tags),
            id2label=dict(enumerate(tags)),
            label2id={t: i for i, t in enumerate(tags)},
            dtype=torch.float32,  # fp32 master weights even when the base was saved in half precision
        )
    return tokenizer, model


def _max_length(config: TrainConfig, model, tokenizer) -> int:
    limit = model_max_length(model.config, tokenizer)
    if config.max_length is None:
        return limit  # sentences are short: the model's limit truncates almost none
    if not 2 <= config.max_length <= limit:
        raise InputError(
            f"--max-length must be between 2 and the model's limit of {limit}, got {config.max_length}"
        )
    return config.max_length


def _calibration(
    labels: Sequence[str], logits: Sequence[np.ndarray], data: NerData
) -> calibration.Calibration | None:
    """A temperature for every token's scores, fitted on the validation words' first sub-tokens
    (`logits`, the tokens a tag is read from) against their gold tags; a gold tag the model does
    not have counts as "O", as training reads it."""
    flat, gold = labelled_words(labels, logits, data.validation)
    if not len(gold):
        return None
    gold = np.where(gold >= 0, gold, list(labels).index(OUTSIDE) if OUTSIDE in labels else 0)
    source = next((r.source for r in data.report if r.name == "validation"), "validation")
    return calibration.fit(flat, gold, f"{source} (each word's first sub-token)", method="temperature")


def _argmax(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    # Keeps (N, T) tag ids instead of (N, T, tags) logits for the whole validation set.
    return logits.argmax(dim=-1)


def _metrics_fn(tags: list[str]):
    def compute(prediction) -> dict[str, float]:
        gold, predicted = features.labelled_tags(
            np.asarray(prediction.predictions), np.asarray(prediction.label_ids), tags
        )
        ev = score_entities(gold, predicted)
        o = ev.overall
        return {"f1": o.f1, "precision": o.precision, "recall": o.recall, "token_accuracy": ev.token_accuracy}

    return compute


def _finish(
    config: TrainConfig, trainer: Trainer, data: NerData, table, max_length: int, started, unlabeled: int
) -> TrainResult:
    output = Path(config.output)
    with quiet_transformers():
        _save(trainer.model, trainer.processing_class, output, config.save_dtype)
    # The saved folder as users load it: the figures are those `clearpipe evaluate` gives (the
    # temperature, fitted below, never changes a tag).
    loaded = clearpipe.load(str(output), device="auto", calibrated=False)
    # One pass over validation serves both the fit and the figures (a temperature moves no logit).
    validation = loaded.predict_word_logits([list(s.words) for s in data.validation])
    fitted = _calibration(loaded.labels, validation, data) if config.calibrate else None
    if fitted is not None:  # scored as users will load it: with the temperature
        loaded.settings = dataclasses.replace(loaded.settings, temperature=fitted.scaling)
    evaluations = {"validation": evaluate_model(loaded, data.validation, n_worst=10, logits=validation)}
    if data.test is not None:
        evaluations["test"] = evaluate_model(loaded, data.test, n_worst=10)
    state = trainer.state
    seconds = time.monotonic() - started
    run = NerRun(
        config=asdict(config),
        resolved={
            "base": trainer.model.config._name_or_path,
            "task": "token-classification",
            "max_length": max_length,
            "selection_metric": "entity F1",
            "bf16": trainer.args.bf16,
            "device": str(trainer.args.device),
            "optimizer_steps": state.max_steps,
            "teachers": [] if config.distillation is None else list(config.distillation.teachers),
            "unlabeled_sentences": unlabeled,
        },
        data=data,
        epochs=table.rows,
        evaluations=evaluations,
        best_epoch=_best_epoch(state),
        global_step=state.global_step,
        seconds=seconds,
    )
    write_run(output, run)
    if fitted is not None:
        calibration.write_calibration(output, fitted)  # config.json, metrics.json and the card
        print(f"calibration: {fitted.summary()}", flush=True)
    if not config.keep_checkpoints:
        shutil.rmtree(output / CHECKPOINTS, ignore_errors=True)
    metrics = {name: ev.to_dict() for name, ev in evaluations.items()}
    return TrainResult(output, state.global_step, run.best_epoch, metrics, seconds)
