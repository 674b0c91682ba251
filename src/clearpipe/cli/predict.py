"""`clearpipe predict`: classify every row of a file into a new file."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from clearpipe.cli import entities, options, startup
from clearpipe.cli.loading import LoadFlags, from_flags

if TYPE_CHECKING:
    from clearpipe.bulk.local import BulkClassifier, PredictJob


def predict(
    input: Annotated[
        str,
        typer.Argument(
            help="A .txt (one text per line), .csv, .tsv, .jsonl, .json or .parquet file; with --engine "
            "ray also a folder, a glob or a URI (s3://bucket/prefix/) of such files (not .json).",
            show_default=False,
        ),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output", "-o", help="Where to write the results: a file; with --engine ray, a folder of parts."
        ),
    ],
    text_column: Annotated[
        str | None, typer.Option("--text-column", help="Column holding the text. Inferred when obvious.")
    ] = None,
    text_pair_column: Annotated[
        str | None, typer.Option("--text-pair-column", help="Column holding the second text of a pair.")
    ] = None,
    model: options.Model = None,
    top_k: options.TopK = None,
    max_length: options.MaxLength = None,
    batch_size: options.BatchSize = None,
    max_tokens: options.MaxTokens = None,
    device: options.Device = "auto",
    dtype: options.Dtype = "auto",
    recheck: options.Recheck = True,
    long_text: options.LongText = "truncate",
    calibrated: options.Calibrated = True,
    min_score: options.MinScore = None,
    encoding: options.Encoding = "utf-8",
    no_header: options.NoHeader = False,
    chunk_rows: Annotated[
        int,
        typer.Option(
            "--chunk-rows",
            min=1,
            help="Rows read, classified and written at a time (--engine ray: per part).",
        ),
    ] = 4096,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run into the same OUTPUT.")
    ] = False,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help='"local" (this process) or "ray" (workers on a Ray cluster, each holding the model; '
            "pip install 'clearpipe[ray]'; see docs/SCALE.md).",
        ),
    ] = "local",
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help='--engine ray: the cluster to join ("auto": the one `ray start` runs here). '
            "Default: start Ray on this machine.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="--engine ray: how many workers; each gets cores / workers threads. Default: one per "
            "machine, or one per GPU share with --gpus-per-worker.",
        ),
    ] = None,
    gpus_per_worker: Annotated[
        float,
        typer.Option(
            "--gpus-per-worker", min=0, help="--engine ray: GPUs per worker (1: one worker per GPU)."
        ),
    ] = 0.0,
    output_format: Annotated[
        str | None,
        typer.Option(
            "--output-format",
            help="--engine ray: parquet, csv, tsv or jsonl parts. Default: OUTPUT's suffix, else parquet.",
        ),
    ] = None,
    use_lite: options.Lite = False,
    labels: options.Labels = None,
    template: options.Template = None,
    multi_label: options.MultiLabel = False,
    one_row_per_entity: Annotated[
        bool,
        typer.Option(
            "--one-row-per-entity",
            help="NER models: one output row per entity (row number, entity_group, score, word, start, "
            "end) instead of an entities column holding a JSON list.",
        ),
    ] = False,
    aggregation: options.Aggregation = None,
) -> None:
    """Classify INPUT into OUTPUT, keeping INPUT's columns and adding label and score (and for a
    multi-label model, labels: those that apply; with --min-score, decided). With --labels, no
    model is trained: each text is compared with the labels (zero-shot; --multi-label: labels).
    A NER model adds an entities column (JSON), or with --one-row-per-entity writes one row per entity.

    The output is written to a temporary file and renamed into place at the end; an interrupted
    run continues with --resume, and every input row appears exactly once in the output.
    """
    from clearpipe.bulk.local import PredictJob

    if labels is not None and engine == "ray":  # before Ray is looked for, as --lite below
        from clearpipe.errors import InputError

        raise InputError(
            "--labels runs with --engine local: Ray workers each hold a classification checkpoint or "
            "export, not a zero-shot model; drop --engine ray"
        )
    if use_lite and gpus_per_worker:  # before Ray is looked for: the pair is the mistake to name
        from clearpipe.errors import InputError

        raise InputError("--lite runs on the CPU: --gpus-per-worker needs the full classifier")
    _check_engine(engine, address, workers, gpus_per_worker, output_format)
    job = PredictJob(
        input=Path(input),
        output=Path(output),
        text_column=text_column,
        pair_column=text_pair_column,
        top_k=options.parse_top_k(top_k),
        chunk_rows=chunk_rows,
        encoding=encoding,
        header=not no_header,
        resume=resume,
        min_score=min_score,
    )
    if engine == "local":
        _check_paths(job)
    if labels is not None or template is not None or multi_label:
        flags = from_flags(LoadFlags, locals(), lite=use_lite)
        _predict_zero_shot(job, flags, labels, template, multi_label)
        return
    # One set of load options for this process and, with --engine ray, for every worker;
    # --min-score is the job's (PredictJob.min_score), not the classifier's.
    flags = from_flags(LoadFlags, locals(), lite=use_lite, min_score=None)
    load_options = flags.lite_options() if use_lite else flags.full_options()
    # With GPU workers this process only checks the model and plans, so it needs no GPU itself.
    clf = (dataclasses.replace(flags, device="cpu") if gpus_per_worker else flags).load()
    startup.resume_collector()
    aggregation = entities.check_aggregation(aggregation, clf)
    if entities.is_entities(clf) or one_row_per_entity:
        job = _entity_job(clf, job, one_row_per_entity, aggregation)
    else:
        clf.check_min_score(min_score)  # a multi-label model decides by thresholds instead
    if engine == "ray":
        from clearpipe.bulk.ray import RayJob

        ray_job = RayJob(
            job,
            input,
            output,
            model,
            load_options,
            output_format,
            address,
            workers,
            gpus_per_worker,  # 0 with --lite, refused above
            lite=use_lite,
        )
        _predict_on_ray(clf, ray_job, job.one_row_per_entity)
        return
    _predict_here(clf, job)


def _check_paths(job: PredictJob) -> None:
    """The input and output formats and a writable output, before the model loads."""
    from clearpipe.bulk.local import check_paths
    from clearpipe.cli.outputs import check_file

    check_paths(job)
    check_file(job.output, "--output", "labelled.csv")


def _predict_zero_shot(
    job: PredictJob, flags: LoadFlags, labels: str | None, template: str | None, multi_label: bool
) -> None:
    """`predict --labels`: every row against the labels (`zeroshot.fixed.FixedLabels`), written
    as a classifier's predictions are; the labels are checked before the model loads."""
    from clearpipe.cli import zero_shot
    from clearpipe.errors import InputError
    from clearpipe.zeroshot.classifier import check_count
    from clearpipe.zeroshot.fixed import FixedLabels
    from clearpipe.zeroshot.labels import check_template, parse_labels

    if labels is None:
        raise InputError("--template and --multi-label go with --labels (zero-shot classification)")
    zero_shot.check_flags(flags, **{"--text-pair-column": job.pair_column is not None})
    candidates = parse_labels(labels)
    check_count(candidates, multi_label)
    if template is not None:
        check_template(template)
    fixed = FixedLabels(zero_shot.load(flags), candidates, template, multi_label)
    startup.resume_collector()
    _predict_here(fixed, dataclasses.replace(job, zero_shot=fixed.record()))


def _predict_here(clf: BulkClassifier, job: PredictJob) -> None:
    """Classify the file in this process and say what was written."""
    from clearpipe.bulk.local import predict_file

    progress = _Progress(job.input)
    try:
        summary = predict_file(clf, job, progress if sys.stderr.isatty() else None)
    finally:
        progress.close()
    resumed = f" ({summary.resumed_rows} from the interrupted run)" if summary.resumed_rows else ""
    rows = _rows(summary.rows, summary.input_rows)
    empty = _empty(summary.empty, found=job.one_row_per_entity or summary.input_rows is not None)
    print(f"wrote {rows}{resumed} to {summary.output}{empty}", file=sys.stderr)
    if summary.undecided is not None:
        print(
            f"{summary.undecided} rows not decided (best score below --min-score {job.min_score})",
            file=sys.stderr,
        )


def _entity_job(clf: object, job: PredictJob, per_entity: bool, aggregation: str | None) -> PredictJob:
    """The job of a token-classification (NER) model, refusing what means nothing to one."""
    from clearpipe.errors import InputError
    from clearpipe.postprocess import BEST

    if not entities.is_entities(clf):
        raise InputError("--one-row-per-entity needs a token-classification (NER) model")
    entities.refuse(
        **{
            "--top-k": job.top_k is not BEST,
            "--text-pair-column": job.pair_column is not None,
            "--min-score": job.min_score is not None,
        }
    )
    return dataclasses.replace(job, one_row_per_entity=per_entity, aggregation_strategy=aggregation)


def _rows(rows: int, input_rows: int | None) -> str:
    """'120 rows', or with one row per entity '310 entity rows for 120 input rows'."""
    return f"{rows} rows" if input_rows is None else f"{rows} entity rows for {input_rows} input rows"


def _empty(count: int, scope: str = "", found: bool = False) -> str:
    """The summary's note on empty texts, which get no label and no score (`found`: no entities)."""
    what = "no entities" if found else "no label or score"
    return f"; {count} rows{scope} had an empty text: {what}" if count else ""


def _check_engine(
    engine: str, address: str | None, workers: int | None, gpus: float, output_format: str | None
) -> None:
    from clearpipe.errors import InputError

    if engine not in ("local", "ray"):
        raise InputError(f'unknown --engine "{engine}": use "local" or "ray"')
    if engine == "local" and (address or workers or gpus or output_format):
        raise InputError("--address, --workers, --gpus-per-worker and --output-format need --engine ray")
    if engine == "ray":
        from clearpipe.bulk.ray import require_ray

        require_ray()  # before the model loads: a missing extra is the first thing to say


def _predict_on_ray(clf, ray_job, per_entity: bool = False) -> None:
    from clearpipe.bulk.ray import predict_on_ray

    progress = _RayProgress(sys.stderr)
    try:
        summary = predict_on_ray(clf, ray_job, progress)
    finally:
        progress.close()
    resumed = f" ({summary.resumed_rows} from the interrupted run)" if summary.resumed_rows else ""
    scope = " classified now" if summary.resumed_rows else ""
    found = per_entity or entities.is_entities(clf)
    print(
        f"wrote {_rows(summary.rows, summary.input_rows)}{resumed} in {summary.parts} parts to "
        f"{summary.output}{_empty(summary.empty, scope, found)}",
        file=sys.stderr,
    )
    if summary.undecided is not None:
        print(
            f"{summary.undecided} rows classified now not decided (best score below --min-score)",
            file=sys.stderr,
        )


class _RayProgress:
    """Rows done / total and rows/s on stderr: one line redrawn on a terminal, else a line every
    10 s (a cluster job's log)."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = 0.0

    def __call__(self, progress) -> None:
        if not self.tty and progress.seconds - self.last < 10 and progress.rows < progress.total:
            return
        self.last = progress.seconds
        rate = progress.new_rows / progress.seconds if progress.seconds > 0 else 0.0
        line = f"classified {progress.rows:,}/{progress.total:,} rows, {rate:,.0f} rows/s"
        self.stream.write(f"\r{line}" if self.tty else f"{line}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.last:
            self.stream.write("\n")


class _Progress:
    """A progress bar on stderr, by bytes of input read. It starts with the first finished chunk,
    so that a mistake found while planning (a missing column, say) prints without a bar."""

    def __init__(self, path: Path) -> None:
        self.total = path.stat().st_size if path.is_file() else 0
        self.bar = None
        self.task = None

    def __call__(self, chunk) -> None:
        if self.bar is None:
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

            self.bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                DownloadColumn(),
                TimeRemainingColumn(),
            )
            self.bar.start()
            self.task = self.bar.add_task("classifying", total=self.total)
        self.bar.update(self.task, completed=chunk.bytes_read)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
