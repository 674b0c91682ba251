"""`clearpipe train`: fine-tune a checkpoint on a labelled table (see docs/TRAINING.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clearpipe.cli import ner, options, startup
from clearpipe.cli.loading import from_flags


def train(
    ctx: typer.Context,  # which flags the command line set: NER refuses SetFit's even at their defaults
    data: Annotated[
        Path,
        typer.Argument(help="Training data: .csv, .tsv, .json, .jsonl, .parquet or a save_to_disk folder."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Folder for the trained model and its reports.")
    ],
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="Folder, hub id or named base (`clearpipe bases`) to fine-tune. Default: minilm-l6.",
        ),
    ] = None,
    validation: Annotated[
        Path | None, typer.Option("--validation", help="Validation data. Default: a stratified 10% of DATA.")
    ] = None,
    test: Annotated[Path | None, typer.Option("--test", help="Test data, scored once at the end.")] = None,
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help='"auto": by the file\'s shape; "ner": named entities (CoNLL word/tag columns, or JSONL with '
            'tokens/tags or text/entities); "classification": a labelled table.',
        ),
    ] = "auto",
    text_column: Annotated[str | None, typer.Option("--text-column", help="Column with the text.")] = None,
    text_pair_column: Annotated[
        str | None, typer.Option("--text-pair-column", help="Column with the second text of a pair.")
    ] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="Column with the label.")] = None,
    label_names: Annotated[
        str | None,
        typer.Option(
            "--label-names",
            help="Comma-separated label names: the id order, or names for integer ids 0..K-1.",
        ),
    ] = None,
    multi_label: Annotated[
        bool | None,
        typer.Option(
            "--multi-label/--single-label", help="Force multi-label (label cells hold several labels)."
        ),
    ] = None,
    label_sep: Annotated[
        str, typer.Option("--label-sep", help="Separator of labels in a multi-label cell.")
    ] = ",",
    no_header: options.NoHeader = False,
    encoding: options.Encoding = "utf-8",
    max_length: Annotated[
        int | None, typer.Option("--max-length", help="Tokens per row. Default: the data's 99th percentile.")
    ] = None,
    epochs: Annotated[float, typer.Option("--epochs", min=0.01)] = 3.0,
    learning_rate: Annotated[float, typer.Option("--learning-rate", "--lr", min=0.0)] = 5e-5,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Rows per device per step.")] = 32,
    gradient_accumulation: Annotated[int, typer.Option("--gradient-accumulation", min=1)] = 1,
    warmup: Annotated[
        float, typer.Option("--warmup", min=0.0, max=0.99, help="Warmup fraction of the steps.")
    ] = 0.06,
    weight_decay: Annotated[float, typer.Option("--weight-decay", min=0.0)] = 0.01,
    patience: Annotated[
        int,
        typer.Option("--patience", min=0, help="Stop after this many epochs without improvement; 0: never."),
    ] = 2,
    class_weights: Annotated[
        str, typer.Option("--class-weights", help='"auto" for imbalanced data, or "none".')
    ] = "none",
    metric: Annotated[
        str, typer.Option("--metric", help='Best-checkpoint metric: "auto", "accuracy" or "macro_f1".')
    ] = "auto",
    seed: Annotated[int, typer.Option("--seed")] = 42,
    bf16: Annotated[
        bool | None, typer.Option("--bf16/--no-bf16", help="bf16 mixed precision. Default: where supported.")
    ] = None,
    group_by_length: Annotated[bool, typer.Option("--group-by-length/--no-group-by-length")] = True,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run in --output.")
    ] = False,
    keep_checkpoints: Annotated[
        bool, typer.Option("--keep-checkpoints", help="Keep per-epoch checkpoints.")
    ] = False,
    save_dtype: Annotated[
        str, typer.Option("--save-dtype", help='Weights dtype on disk: "float32", "float16" or "bfloat16".')
    ] = "float32",
    max_steps: Annotated[int, typer.Option("--max-steps", help="Stop after this many optimizer steps.")] = -1,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate/--no-calibrate",
            help="Fit a temperature on the validation data after training, so that scores match accuracy "
            "(single-label models; labels never change).",
        ),
    ] = True,
    teacher: Annotated[
        list[str] | None,
        typer.Option(
            "--teacher",
            help="Distil from this classifier or tagger (folder or hub id) with the same labels; "
            "repeat it to learn from the mean of several teachers' logits.",
        ),
    ] = None,
    distill_temperature: Annotated[
        float, typer.Option("--distill-temperature", help="Softening of the teacher's scores.")
    ] = 2.0,
    distill_weight: Annotated[
        float, typer.Option("--distill-weight", help="Share of the loss from the teacher (0-1).")
    ] = 0.5,
    distill_hidden: Annotated[
        float,
        typer.Option(
            "--distill-hidden",
            help="Weight of a loss that has each student layer learn a teacher layer's "
            "mean-pooled states (one --teacher; 0: the teacher's scores only).",
        ),
    ] = 0.0,
    unlabeled: Annotated[
        Path | None,
        typer.Option(
            "--unlabeled",
            help="Texts without labels, learnt from the --teacher alone (named entities: a .txt "
            "with one text a line, CoNLL words, or .jsonl with tokens or text).",
        ),
    ] = None,
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help='"setfit" (few-shot: contrastive pairs tune the sentence encoder, then a head), '
            '"finetune" (the whole model, as transformers\' Trainer does), or "auto": SetFit when the '
            "smallest class has fewer than 64 rows (single-label data, no --teacher).",
        ),
    ] = "auto",
    setfit_iterations: Annotated[
        int, typer.Option("--setfit-iterations", min=1, help="SetFit: positive and negative pairs per row.")
    ] = 20,
    label_prior: Annotated[
        bool,
        typer.Option(
            "--label-prior/--no-label-prior",
            help="SetFit: start from the label names, as zero-shot does (heads pulled toward the zero-shot "
            "head are compared with the plain one on held-out rows; use it when names say what classes are).",
        ),
    ] = True,
) -> None:
    """Fine-tune a base on DATA and write a Hugging Face checkpoint with metrics and a model card to OUTPUT."""
    startup.resume_collector()  # training runs long: start-up time does not matter
    if ner.wants_ner(task, data):  # named entities: CoNLL or NER JSONL (clearpipe.training.ner)
        return ner.train(locals())
    from clearpipe.cli.outputs import check_folder
    from clearpipe.errors import InputError
    from clearpipe.onnx.export import refuse_export
    from clearpipe.training.data import DataOptions
    from clearpipe.training.distill import Distillation
    from clearpipe.training.train import TrainConfig
    from clearpipe.training.train import train as run

    options = from_flags(
        DataOptions,
        locals(),
        pair_column=text_pair_column,
        label_names=[n.strip() for n in label_names.split(",")] if label_names else None,
        header=not no_header,
    )
    check_folder(output, "--output")
    refuse_export(base, "trained (--base)")
    distillation = None
    if teacher:
        distillation = Distillation(tuple(teacher), distill_temperature, distill_weight, distill_hidden)
    config = from_flags(
        TrainConfig,
        locals(),
        data=str(data),
        output=str(output),
        validation=str(validation) if validation else None,
        test=str(test) if test else None,
        data_options=options,
        patience=patience or None,  # the flag's 0 is the config's "never"
        distillation=distillation,
        unlabeled=str(unlabeled) if unlabeled else None,
    )
    if unlabeled and not teacher:
        raise InputError("--unlabeled rows learn from a teacher: pass --teacher too")
    if distill_hidden and not teacher:
        raise InputError("--distill-hidden learns a teacher's hidden states: pass --teacher too")
    run(config)
