"""`clearpipe calibrate`: fit a temperature for any checkpoint and write a calibrated copy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clearpipe.cli import options, startup
from clearpipe.cli.loading import LoadFlags, from_flags


def calibrate(
    model: Annotated[str, typer.Argument(help="Checkpoint folder or hub id (softmax, single-label).")],
    data: Annotated[
        Path,
        typer.Argument(
            help="Held-out labelled data, not the training rows: .csv, .tsv, .json, .jsonl, .parquet or a folder."
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="New folder for the calibrated copy of MODEL.")
    ],
    text_column: Annotated[str | None, typer.Option("--text-column", help="Column with the text.")] = None,
    text_pair_column: Annotated[
        str | None, typer.Option("--text-pair-column", help="Column with the second text of a pair.")
    ] = None,
    label_column: Annotated[str | None, typer.Option("--label-column", help="Column with the label.")] = None,
    encoding: options.Encoding = "utf-8",
    max_length: options.MaxLength = None,
    batch_size: options.BatchSize = 64,
    device: options.Device = "auto",
    dtype: options.Dtype = "auto",
    method: Annotated[
        str,
        typer.Option(
            "--method",
            help='"temperature" (one number), "margin_temperature" (confidence also follows the gap between '
            'the two best logits) or "auto": the margin one only where it predicts held-out folds better '
            "and its fit stays inside its bounds.",
        ),
    ] = "auto",
) -> None:
    """Fit the temperature that makes MODEL's scores honest on DATA (Guo et al., 2017) and write
    MODEL with it to OUTPUT. Labels never change; clearpipe applies the temperature wherever the
    copy is used, and plain transformers.pipeline ignores it."""
    from clearpipe.cli.outputs import check_folder
    from clearpipe.errors import InputError
    from clearpipe.training.calibration import (
        METHODS,
        calibrate_split,
        check_calibratable,
        check_output,
        write_calibrated_copy,
    )
    from clearpipe.training.data import DataOptions
    from clearpipe.training.evaluation import read_file

    if method not in METHODS:
        raise InputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    check_folder(output, "--output")
    clf = from_flags(LoadFlags, locals(), calibrated=False).load()  # fitted on the raw logits
    startup.resume_collector()
    check_calibratable(clf)  # before DATA is read and the model runs over it
    check_output(clf.source, output)
    data_options = from_flags(DataOptions, locals(), pair_column=text_pair_column)
    split, report = read_file(clf, data, data_options)
    for reason, rows in report.dropped.items():
        print(f"dropped {len(rows)} rows: {reason} (rows {', '.join(map(str, rows[:5]))})")
    calibration = calibrate_split(clf, split, str(data), method)
    write_calibrated_copy(clf.source, output, calibration)
    print(calibration.summary())
    print(f"wrote the calibrated model to {output}")
