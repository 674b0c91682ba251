"""Fine-tune a checkpoint on a labelled table with transformers' `Trainer`, extended only via hooks.

`train(TrainConfig(...))` reads and reports the data (`clearpipe.training.data`), tokenizes it with the
classifier's own tokenizer stage (`clearpipe.training.features`), trains with evaluation and a checkpoint
every epoch, keeps the best epoch, and writes a Hugging Face checkpoint folder with metrics, the
training trace and a model card (`clearpipe.training.report`). It runs unchanged under `torchrun`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    EarlyStoppingCallback,
    PrinterCallback,
    ProgressCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import get_last_checkpoint

from clearpipe.errors import InputError
from clearpipe.loading import (
    load_config,
    model_max_length,
    quiet_transformers,
    resolve_source,
    uses_token_type_ids,
)
from clearpipe.postprocess import Activation, activate
from clearpipe.training import bases, distill, fewshot, hidden, report, setfit
from clearpipe.training.calibration import Calibration, calibrate_split, write_calibration
from clearpipe.training.data import DataOptions, Split, TrainingData, read_training_data
from clearpipe.training.distill import Distillation
from clearpipe.training.evaluation import THRESHOLDS_KEY, evaluate_split
from clearpipe.training.features import Collator, LengthStats, length_stats, to_dataset
from clearpipe.training.metrics import selection_metrics, tune_thresholds

CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class TrainConfig:
    """Everything `clearpipe train` needs; the defaults are the recommended settings.

    >>> TrainConfig(data="train.csv", base="bert-base-uncased", output="out").learning_rate
    5e-05
    """

    data: str
    output: str
    base: str | None = (
        None  # a folder, a hub id or a named base (`clearpipe.training.bases`); None: minilm-l6
    )
    validation: str | None = None
    test: str | None = None
    data_options: DataOptions = field(default_factory=DataOptions)
    max_length: int | None = None  # None: the 99th percentile of the training rows' token lengths
    epochs: float = 3.0
    learning_rate: float = 5e-5
    batch_size: int = 32
    gradient_accumulation: int = 1
    warmup: float = 0.06  # fraction of the optimizer steps
    weight_decay: float = 0.01
    patience: int | None = 2  # epochs without improvement before stopping; None: never
    class_weights: str = "none"  # "none" or "auto" (inverse class frequency)
    metric: str = "auto"  # "auto", "accuracy" or "macro_f1"
    seed: int = 42
    bf16: bool | None = None  # None: where the hardware supports it
    group_by_length: bool = True
    resume: bool = False
    keep_checkpoints: bool = False
    save_dtype: str = "float32"  # or "float16" for a half-size shipped model
    max_steps: int = -1  # a hard cap on optimizer steps, for smoke runs
    calibrate: bool = True  # fit a temperature on the validation split (single-label softmax models)
    distillation: Distillation | None = None  # learn from a teacher's scores too (`training.distill`)
    unlabeled: str | None = None  # a table of texts without labels, learnt from the teacher alone
    method: str = "auto"  # "setfit", "finetune", or "auto": SetFit below `setfit.SETFIT_BELOW` rows per class
    setfit_iterations: int = 20  # SetFit's positive and negative pairs per row
    label_prior: bool = True  # SetFit: also try heads pulled toward the label names' zero-shot head


@dataclass
class TrainResult:
    output: Path
    global_step: int
    best_epoch: float | None
    metrics: dict
    seconds: float


class ClearpipeTrainer(Trainer):
    """`Trainer` with clearpipe's loss: class-weighted cross-entropy, or BCE for multi-label.

    Only the `compute_loss` hook is overridden; the loss it returns is a per-batch mean, so the
    Trainer divides it by the gradient-accumulation steps itself.
    """

    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *args,
        class_weights: torch.Tensor | None,
        multi_label: bool,
        distillation: Distillation | None = None,
        teacher_states: np.ndarray | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.class_weights = class_weights
        self.multi_label = multi_label
        self.distillation = distillation
        self.teacher_states = teacher_states  # (rows, layers, width), indexed by a batch's "row"

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        teacher = inputs.pop("teacher_logits", None)  # training batches of a distillation run only
        labelled = inputs.pop("labelled", None)
        rows = inputs.pop("row", None)  # hidden-state distillation only (training.hidden)
        # Hidden states only when they are learnt: a model's plain forward keeps its plain signature.
        outputs = model(**inputs) if rows is None else model(**inputs, output_hidden_states=True)
        logits = outputs.logits.float()  # (B, L)
        weights = None if self.class_weights is None else self.class_weights.to(logits.device)
        reduction = "mean" if teacher is None else "none"
        if self.multi_label:
            f = torch.nn.functional.binary_cross_entropy_with_logits
            loss = f(logits, labels, pos_weight=weights, reduction=reduction)
        else:
            loss = torch.nn.functional.cross_entropy(logits, labels, weight=weights, reduction=reduction)
        if teacher is not None:
            hard = loss.mean(dim=1) if self.multi_label else loss  # (B,)
            hard = torch.where(labelled, hard, torch.zeros_like(hard))
            loss = distill.loss(
                logits, teacher.float(), labels, labelled, self.distillation, hard, self.multi_label
            )
        if rows is not None:
            states = torch.from_numpy(self.teacher_states[rows.cpu().numpy()]).to(logits.device)
            student = self.accelerator.unwrap_model(model)
            mask = inputs["attention_mask"]
            distance = hidden.loss(student, outputs.hidden_states, mask, states)
            loss = loss + self.distillation.hidden_weight * distance
        return (loss, outputs) if return_outputs else loss


class _QuietProgress(ProgressCallback):
    """The progress bar without transformers' dict-per-log printing (the epoch table replaces it)."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        return


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def bf16_supported() -> bool:
    """bf16 autocast pays off on GPUs that have it and on CPUs with AVX-512 BF16 or AMX."""
    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def train(config: TrainConfig, callbacks: list[TrainerCallback] | None = None) -> TrainResult:
    """Fine-tune `config.base` on `config.data` and write the model folder `config.output`.

    >>> result = train(TrainConfig(data="reviews.csv", base="path/to/base", output="out"))  # doctest: +SKIP
    >>> result.metrics["validation"]["accuracy"]  # doctest: +SKIP
    0.91
    """
    output = Path(config.output)
    _check_output(output, config.resume)
    with _cleaned_on_failure(output):
        return _train(config, callbacks)


def _train(config: TrainConfig, callbacks: list[TrainerCallback] | None) -> TrainResult:
    started = time.monotonic()
    output = Path(config.output)
    main = is_main_process()
    data = read_training_data(config.data, config.validation, config.test, config.data_options)
    if main:
        report.print_data_report(data.report)
    given = data.train.labels + (data.validation.labels if data.report.validation_from_split else [])
    if setfit.uses_setfit(config.method, given, data.labels.multi_label, config.distillation is not None):
        fewshot.check(config, data)
        run = fewshot.train_few_shot(config, data, started, _bf16(config))
        return TrainResult(output, run.steps, None, run.metrics, run.seconds)
    # auto would have picked SetFit without the teacher (multi-label data never gets here as SetFit)
    if (
        main
        and config.distillation is not None
        and setfit.uses_setfit(config.method, given, data.labels.multi_label)
    ):
        print("few rows per class and a teacher: fine-tuning with distillation (SetFit cannot distil)")
    source = resolve_source(bases.resolve_base(config.base))
    set_seed(config.seed)  # the new classification head is drawn from the global generator
    tokenizer, model = _load_base(source, data)
    use_types = uses_token_type_ids(model, tokenizer)
    limit = model_max_length(model.config, tokenizer)
    if config.max_length is not None and not 2 <= config.max_length <= limit:
        raise InputError(
            f"--max-length must be between 2 and the model's limit of {limit}, got {config.max_length}"
        )
    lengths = length_stats(tokenizer, data.train, limit, config.max_length, use_types)
    if main:
        report.print_lengths(lengths)
    multi = data.labels.multi_label
    num_labels = len(data.labels.names)
    train_ds = to_dataset(tokenizer, data.train, lengths.max_length, use_types, num_labels, multi)
    states = None
    if config.distillation is not None:
        train_ds, items = _with_teacher(
            config, data, train_ds, tokenizer, lengths.max_length, use_types, output
        )
        train_ds, states = _with_teacher_states(config.distillation, items, train_ds, model, output)
    val_ds = to_dataset(tokenizer, data.validation, lengths.max_length, use_types, num_labels, multi)
    metric = _selection_metric(config, data)
    collator = Collator(tokenizer.pad_token_id or 0, tokenizer.padding_side, multi)
    table = report.EpochTable(metric, enabled=main)
    flow = report.FlowRecorder()
    trainer = ClearpipeTrainer(
        model=model,
        args=_training_arguments(config, output, metric),
        data_collator=collator,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        processing_class=tokenizer,
        compute_metrics=_metrics_fn(multi, flow),
        callbacks=[table, *_early_stopping(config), *(callbacks or [])],
        class_weights=_class_weights(config, data, main),
        multi_label=multi,
        distillation=config.distillation,
        teacher_states=states,
    )
    _quiet_progress(trainer)
    resume_from = _resume_point(output, config.resume)
    with quiet_transformers():
        trainer.train(resume_from_checkpoint=resume_from)
    if not trainer.is_world_process_zero():
        return TrainResult(output, trainer.state.global_step, None, {}, time.monotonic() - started)
    return _finish(config, trainer, data, lengths, collator, table, flow, metric, started)


def _with_teacher(
    config: TrainConfig, data: TrainingData, train_ds, tokenizer, max_length, use_types, output
):
    """The training dataset with the teacher's logits per row and the unlabelled rows appended,
    and the texts of its rows in order."""
    import datasets

    distillation = config.distillation
    distillation.check()
    if _distributed():
        raise InputError("--teacher runs on one process; start it without torchrun")
    if data.labels.multi_label and config.unlabeled:
        raise InputError("--unlabeled rows need a single-label task")
    if data.train.items and not isinstance(data.train.items[0], str) and config.unlabeled:
        raise InputError("--unlabeled rows are single texts; this task classifies pairs")
    names = data.labels.names
    column = config.data_options.text_column
    extra = distill.read_unlabeled(Path(config.unlabeled), column) if config.unlabeled else []
    items = [*data.train.items, *extra]
    logits = distill.teacher_logits(distillation, items, names, output)
    train_ds = train_ds.add_column("labelled", [True] * len(data.train))
    if extra:
        placeholder = Split(
            "unlabeled", config.unlabeled, extra, [0] * len(extra), list(range(1, len(extra) + 1))
        )
        more = to_dataset(tokenizer, placeholder, max_length, use_types, len(names), False)
        more = more.add_column("labelled", [False] * len(extra)).cast(train_ds.features)
        train_ds = datasets.concatenate_datasets([train_ds, more])
    return train_ds.add_column("teacher_logits", logits.tolist()), items


def _with_teacher_states(distillation: Distillation, items: list, train_ds, model, output: Path):
    """With `--distill-hidden`, the teacher's pooled states per row and a "row" column to index
    them (too large for the dataset itself), and the student given its maps to the teacher's width.
    """
    if not distillation.hidden_weight:
        return train_ds, None
    teacher = distillation.teachers[0]
    key = distill.fingerprint(resolve_source(teacher), items)
    states = hidden.teacher_states(teacher, items, model.config.num_hidden_layers, output, key)
    hidden.attach(model, states.shape[2])
    return train_ds.add_column("row", list(range(len(train_ds)))), states


def _check_output(output: Path, resume: bool) -> None:
    if output.exists() and not output.is_dir():
        raise InputError(f"--output {output} is a file; give a folder")
    if resume:
        return
    if output.is_dir() and any(output.iterdir()):
        raise InputError(
            f"--output {output} is not empty; choose a new folder, or pass --resume to continue a run there"
        )


@contextlib.contextmanager
def _cleaned_on_failure(output: Path) -> Iterator[None]:
    """On failure, remove the files this run wrote at the top of `output` (a model saved but not
    finished must not pass for a trained one) and the folders it left empty, then `output` itself
    if this run created it and nothing is left. Checkpoints and a teacher's cached scores stay:
    `--resume` continues from them.
    """
    before = set(os.listdir(output)) if output.is_dir() else None
    try:
        yield
    except BaseException:
        if is_main_process() and output.is_dir():
            _remove_new(output, before or set())
            if before is None:
                with contextlib.suppress(OSError):
                    output.rmdir()  # only when empty
        raise


def _remove_new(output: Path, before: set[str]) -> None:
    for entry in output.iterdir():
        if entry.name in before:
            continue
        if entry.is_dir() and not entry.is_symlink():
            with contextlib.suppress(OSError):
                entry.rmdir()  # only when empty
        else:
            entry.unlink(missing_ok=True)


def _resume_point(output: Path, resume: bool) -> str | None:
    if not resume:
        return None
    folder = output / CHECKPOINTS
    last = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    if is_main_process():
        # A run stopped before its first checkpoint (during the teacher's pass, say) still has
        # work worth keeping beside it: training starts at step 0 and reuses what is cached.
        print(
            f"resuming from {last}"
            if last
            else f"--resume: no checkpoint yet in {folder}; "
            "training from step 0 (what is cached there, such as teacher logits, is reused)",
            flush=True,
        )
    return last


def _load_base(source: str, data: TrainingData):
    names = data.labels.names
    problem = "multi_label_classification" if data.labels.multi_label else "single_label_classification"
    load_config(source)  # turns a missing or unreachable base into a CheckpointError
    tokenizer = AutoTokenizer.from_pretrained(source)
    with quiet_transformers():
        # fp32 master weights even when the base was saved in half precision.
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=len(names),
            id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)},
            problem_type=problem,
            dtype=torch.float32,
        )
    return tokenizer, model


def _selection_metric(config: TrainConfig, data: TrainingData) -> str:
    if config.metric != "auto":
        if config.metric not in ("accuracy", "macro_f1"):
            raise InputError(f'--metric must be "auto", "accuracy" or "macro_f1", got {config.metric!r}')
        return config.metric
    balanced = data.report.imbalance_ratio < 1.5 and not data.labels.multi_label
    return "accuracy" if balanced else "macro_f1"


def _class_weights(config: TrainConfig, data: TrainingData, main: bool) -> torch.Tensor | None:
    if config.class_weights == "none":
        return None
    if config.class_weights != "auto":
        raise InputError(f'--class-weights must be "auto" or "none", got {config.class_weights!r}')
    counts = np.asarray(list(data.report.splits[0].label_counts.values()), dtype=np.float64)
    counts = np.maximum(counts, 1.0)
    n = float(len(data.train))
    # BCE's pos_weight is negatives per positive; cross-entropy gets sklearn's "balanced" weights.
    weights = (n - counts) / counts if data.labels.multi_label else n / (len(counts) * counts)
    if main:
        shown = ", ".join(f"{name} {w:.2f}" for name, w in zip(data.labels.names, weights, strict=True))
        print(f"class weights: {shown}", flush=True)
    return torch.tensor(weights, dtype=torch.float32)


def _bf16(config: TrainConfig) -> bool:
    return bf16_supported() if config.bf16 is None else config.bf16


def _training_arguments(config: TrainConfig, output: Path, metric: str) -> TrainingArguments:
    cuda = torch.cuda.is_available()
    bf16 = _bf16(config)
    return TrainingArguments(
        output_dir=str(output / CHECKPOINTS),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=max(64, config.batch_size),
        gradient_accumulation_steps=config.gradient_accumulation,
        learning_rate=config.learning_rate,
        warmup_steps=config.warmup,
        weight_decay=config.weight_decay,
        lr_scheduler_type="linear",
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="epoch",
        save_total_limit=2,  # the best and the last epoch
        load_best_model_at_end=True,
        metric_for_best_model=metric,
        greater_is_better=True,
        seed=config.seed,
        data_seed=config.seed,
        bf16=bf16,
        use_cpu=not cuda,
        ddp_backend="gloo" if not cuda and _distributed() else None,
        length_column_name="length",
        **_length_grouping(config.group_by_length),
        remove_unused_columns=False,
        dataloader_num_workers=0,
        report_to="none",
        disable_tqdm=not sys.stderr.isatty(),
        log_level="error",
        log_level_replica="error",
    )


def _length_grouping(enabled: bool) -> dict[str, object]:
    # transformers 5.x before the sampler strategies took a boolean `group_by_length`.
    if "train_sampling_strategy" in TrainingArguments.__dataclass_fields__:
        return {"train_sampling_strategy": "group_by_length" if enabled else "random"}
    return {"group_by_length": enabled}


def _early_stopping(config: TrainConfig) -> list[TrainerCallback]:
    return [] if config.patience is None else [EarlyStoppingCallback(early_stopping_patience=config.patience)]


def _quiet_progress(trainer: Trainer) -> None:
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if not trainer.args.disable_tqdm:
        trainer.add_callback(_QuietProgress)


def _metrics_fn(multi: bool, flow: report.FlowRecorder):
    activation = Activation.SIGMOID if multi else Activation.SOFTMAX

    def compute(prediction) -> dict[str, float]:
        logits = np.asarray(prediction.predictions, dtype=np.float64)  # (N, L)
        probs = activate(logits, activation)
        labels = np.asarray(prediction.label_ids)
        flow.record_eval(logits.shape, probs, multi)
        return selection_metrics(probs, labels.astype(int))

    return compute


def _finish(
    config, trainer, data, lengths: LengthStats, collator, table, flow, metric, started
) -> TrainResult:
    import clearpipe

    output = Path(config.output)
    model = trainer.model
    thresholds = None
    if data.labels.multi_label:
        thresholds = _tune(trainer, data)
        setattr(model.config, THRESHOLDS_KEY, dict(zip(data.labels.names, thresholds, strict=True)))
    hidden.detach(model)  # the maps to the teacher's width served training only
    with quiet_transformers():
        _save(model, trainer.processing_class, output, config.save_dtype)
    calibration = _calibrate(config, data, output)
    classifier = clearpipe.load(str(output), batch_size=64, device="auto")
    evaluations = {"validation": evaluate_split(classifier, data.validation, n_errors=10)}
    if data.test is not None:
        evaluations["test"] = evaluate_split(classifier, data.test, n_errors=10)
    seconds = time.monotonic() - started
    state = trainer.state
    best_epoch = _best_epoch(state)
    resolved = _resolved(trainer, lengths, metric)
    if config.distillation is not None:
        resolved["teacher"] = _teacher_report(config, data, len(trainer.train_dataset) - len(data.train))
    artifacts = report.RunArtifacts(
        config=asdict(config),
        resolved=resolved,
        data=data.report,
        lengths=lengths,
        epochs=table.rows,
        evaluations=evaluations,
        flow=flow.summary(data, lengths, collator.shapes, trainer.args.per_device_train_batch_size),
        best_epoch=best_epoch,
        global_step=state.global_step,
        seconds=seconds,
        thresholds=thresholds,
        calibration=calibration,
    )
    report.write_run(output, artifacts)
    if not config.keep_checkpoints:
        shutil.rmtree(output / CHECKPOINTS, ignore_errors=True)
    metrics = {name: ev.to_dict() for name, ev in evaluations.items()}
    if calibration is not None:
        metrics["calibration"] = calibration.to_dict()
    return TrainResult(output, state.global_step, best_epoch, metrics, seconds)


def _teacher_report(config: TrainConfig, data: TrainingData, unlabeled_rows: int) -> dict:
    """The teachers' own accuracy on this run's validation and test data (single-label), for the record.

    With one teacher `source` names it; with several, `teachers` gives each one's accuracy and
    `accuracy` is that of their mean logits, the scores the student learnt from.
    """
    import clearpipe

    distillation = config.distillation
    splits = [
        (name, split)
        for name, split in (("validation", data.validation), ("test", data.test))
        if split is not None and len(split) and not data.labels.multi_label
    ]
    teachers, summed = [], {name: 0.0 for name, _ in splits}
    for source in distillation.teachers:
        teacher = clearpipe.load(source)
        order = distill.label_order(teacher.labels, data.labels.names, source)
        accuracy = {}
        for name, split in splits:
            logits = teacher.logits(teacher.tokenize(split.items))[:, order]
            summed[name] = summed[name] + logits
            accuracy[name] = _accuracy(logits, split.labels)
        teachers.append({"source": teacher.source, "accuracy": accuracy})
    report = {
        "temperature": distillation.temperature,
        "weight": distillation.weight,
        "hidden_weight": distillation.hidden_weight,
        "unlabeled_rows": unlabeled_rows,
        "accuracy": {name: _accuracy(summed[name], split.labels) for name, split in splits},
    }
    if len(teachers) == 1:
        return report | {"source": teachers[0]["source"]}
    return report | {"teachers": teachers}


def _accuracy(logits: np.ndarray, labels: Sequence[int]) -> float:
    return float(np.mean(np.asarray(logits).argmax(axis=1) == np.asarray(labels)))


def _tune(trainer: Trainer, data: TrainingData) -> list[float]:
    logits = trainer.predict(trainer.eval_dataset).predictions
    probs = activate(np.asarray(logits, dtype=np.float64), Activation.SIGMOID)
    y = np.zeros(probs.shape, dtype=int)
    for i, ids in enumerate(data.validation.labels):
        y[i, ids] = 1
    return [float(t) for t in tune_thresholds(probs, y)]


def _calibrate(config: TrainConfig, data: TrainingData, output: Path) -> Calibration | None:
    """Fit a temperature on the validation split and save it into the checkpoint's config.json.

    Multi-label models decide by their thresholds instead. Validation data a temperature cannot
    be fitted on (too few rows, one class) leaves the model uncalibrated, with the reason printed:
    the trained model is still worth keeping.
    """
    import clearpipe

    if not config.calibrate or data.labels.multi_label:
        return None
    classifier = clearpipe.load(str(output), batch_size=64, device="auto", calibrated=False)
    try:
        calibration = calibrate_split(
            classifier, data.validation, f"the validation rows of {data.validation.source}"
        )
    except InputError as exc:
        print(f"not calibrated: {exc}", flush=True)
        return None
    if is_main_process():
        write_calibration(output, calibration)  # config.json now; metrics.json and the card come later
    print(f"calibrated: {calibration.summary()}", flush=True)
    return calibration


def _save(model, tokenizer, output: Path, dtype: str) -> None:
    output.mkdir(parents=True, exist_ok=True)
    if dtype not in ("float32", "float16", "bfloat16"):
        raise InputError(f'save dtype must be "float32", "float16" or "bfloat16", got {dtype!r}')
    model = model.to(getattr(torch, dtype))
    model.save_pretrained(str(output))
    tokenizer.save_pretrained(str(output))
    model.to(torch.float32)
    # The weights stay small, but the config says float32: transformers loads a folder in its
    # config's dtype, and half precision on a CPU ran `pipeline()` 3x slower than float32.
    _config_dtype(output, "float32")


def _config_dtype(output: Path, dtype: str) -> None:
    path = output / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["dtype"] = dtype
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _best_epoch(state) -> float | None:
    if state.best_global_step is None:
        return None
    for entry in state.log_history:
        if entry.get("step") == state.best_global_step and "epoch" in entry:
            return float(entry["epoch"])
    return None


def _grouping_of(args: TrainingArguments) -> bool:
    strategy = getattr(args, "train_sampling_strategy", None)
    return (
        strategy == "group_by_length"
        if strategy is not None
        else bool(getattr(args, "group_by_length", False))
    )


def _resolved(trainer: Trainer, lengths: LengthStats, metric: str) -> dict:
    args = trainer.args
    return {
        "base": trainer.model.config._name_or_path,  # the folder or hub id `--base` resolved to
        "max_length": lengths.max_length,
        "selection_metric": metric,
        "bf16": args.bf16,
        "device": str(args.device),
        "world_size": args.world_size,
        "optimizer_steps": trainer.state.max_steps,
        "warmup_steps": args.get_warmup_steps(trainer.state.max_steps),
        "group_by_length": _grouping_of(args),
        "optimizer": str(args.optim),
    }
