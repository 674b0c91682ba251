"""`clearpipe export`: write a model for ONNX Runtime or OpenVINO, checked against fp32 before it is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clearpipe.cli import options, startup


def export(
    model: Annotated[
        str, typer.Argument(help='Checkpoint folder or hub id; "default" for the embedded model.')
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Folder to write (must be new or empty).")],
    format: Annotated[
        str,
        typer.Option(
            "--format", help='Export format: "onnx" or "openvino" (pip install \'clearpipe[openvino]\').'
        ),
    ] = "onnx",
    quantize: Annotated[
        str | None,
        typer.Option(
            "--quantize",
            help='"int8": dynamic int8 (ONNX Runtime), or static int8 weights and activations with a float '
            'referee (OpenVINO, through nncf). "int8-dynamic" (OpenVINO): int8 weights, activations '
            "quantized at run time; one graph, less memory.",
        ),
    ] = None,
    check: Annotated[
        Path | None,
        typer.Option("--check", help="Validation texts (.txt/.csv/.tsv/.jsonl). Default: a built-in sample."),
    ] = None,
    text_column: Annotated[
        str | None, typer.Option("--text-column", help="Column of --check holding the text.")
    ] = None,
    encoding: options.Encoding = "utf-8",
    threshold: Annotated[
        float,
        typer.Option("--threshold", min=0.0, max=100.0, help="Least label agreement with fp32, in percent."),
    ] = 99.0,
    max_length: options.MaxLength = None,
) -> None:
    """Export MODEL to ONNX or OpenVINO; exits non-zero if it agrees with fp32 on fewer than --threshold % labels."""
    startup.resume_collector()  # exporting runs long: start-up time does not matter
    from clearpipe.cli.outputs import check_folder
    from clearpipe.engine.samples import builtin_sample
    from clearpipe.errors import InputError
    from clearpipe.loading import load_config, resolve_source
    from clearpipe.onnx.export import FORMATS, export_onnx, refuse_export
    from clearpipe.onnx.validation import read_texts

    if format not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}; got {format!r}")
    source = None if model == "default" else model
    refuse_export(source, "exported again")
    check_folder(output, "--output")
    if check is None:
        config = load_config(resolve_source(source))
        name, texts = builtin_sample([str(config.id2label[i]) for i in range(config.num_labels)])
    else:
        name, texts = str(check), read_texts(check, text_column, encoding=encoding)
    report = export_onnx(
        source,
        output,
        texts=texts,
        check_name=name,
        quantize=quantize,
        threshold=threshold / 100,
        max_length=max_length,
        format=format,
    )
    kind = (
        f"{'OpenVINO' if format == 'openvino' else 'ONNX'}{f' {report.quantize}' if report.quantize else ''}"
    )
    print(f"wrote {kind} model to {report.output}")
    print(f"checked on {report.check}: {report.agreement.summary()} (required {report.threshold:.2%})")
    if report.activation_group is not None:
        print(f"activations quantized at run time in groups of {report.activation_group} values")
    if report.referee_margin is not None:
        print(
            f"close calls (top-two logit gap under {report.referee_margin:.3f}) re-run in the float "
            "graph kept beside it (referee.xml); --no-recheck when loading skips that"
        )
