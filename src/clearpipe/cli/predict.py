"""`clearpipe predict`: classify every row of a file into a new file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from clearpipe.cli import options, startup


def predict(
    input: Annotated[
        Path, typer.Argument(help="A .txt (one text per line), .csv, .tsv, .jsonl, .json or .parquet file.")
    ],
    output: options.OutputPath,
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
    chunk_rows: Annotated[
        int, typer.Option("--chunk-rows", min=1, help="Rows read, classified and written at a time.")
    ] = 4096,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run into the same OUTPUT.")
    ] = False,
) -> None:
    """Classify INPUT into OUTPUT, keeping INPUT's columns and adding label and score (and for a
    multi-label model, labels: those that apply; with --min-score, decided).

    The output is written to a temporary file and renamed into place at the end; an interrupted
    run continues with --resume, and every input row appears exactly once in the output.
    """
    import clearpipe
    from clearpipe.bulk.local import PredictJob, predict_file

    job = PredictJob(
        input=input,
        output=output,
        text_column=text_column,
        pair_column=text_pair_column,
        top_k=options.parse_top_k(top_k),
        chunk_rows=chunk_rows,
        encoding=encoding,
        resume=resume,
        min_score=min_score,
    )
    clf = clearpipe.load(
        model,
        max_length=max_length,
        batch_size=batch_size,
        max_tokens=max_tokens,
        device=device,
        dtype=dtype,
        recheck=recheck,
        long_text=long_text,
        calibrated=calibrated,
    )
    startup.resume_collector()
    clf.check_min_score(min_score)  # a multi-label model decides by thresholds instead
    progress = _Progress(input)
    try:
        summary = predict_file(clf, job, progress if sys.stderr.isatty() else None)
    finally:
        progress.close()
    resumed = f" ({summary.resumed_rows} from the interrupted run)" if summary.resumed_rows else ""
    print(f"wrote {summary.rows} rows{resumed} to {summary.output}", file=sys.stderr)
    if summary.undecided is not None:
        scope = " of the rows classified now" if summary.resumed_rows else ""
        print(
            f"{summary.undecided} rows{scope} not decided (best score below --min-score {min_score})",
            file=sys.stderr,
        )


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
