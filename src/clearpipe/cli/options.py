"""Flags shared by several commands, declared once so their names and help stay the same."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

Model = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help='Checkpoint folder or hub id; "ner" names the embedded English NER model. '
        "Default: the embedded sentiment model.",
    ),
]
TopK = Annotated[
    str | None,
    typer.Option("--top-k", help='Return the K best labels per input, or "all" for every label.'),
]
MaxLength = Annotated[
    int | None,
    typer.Option("--max-length", help="Truncate inputs to this many tokens. Default: the model's limit."),
]
BatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size", min=1, help="Most rows per forward pass. Default: as many as --max-tokens allows."
    ),
]
MaxTokens = Annotated[
    int | None,
    typer.Option(
        "--max-tokens",
        min=1,
        help="Most padded tokens (rows x longest row) per forward pass. Default: 2048 on a CPU, 16384 on a GPU.",
    ),
]
Device = Annotated[str, typer.Option("--device", help='"auto", "cpu" or "cuda".')]
Dtype = Annotated[
    str,
    typer.Option(
        "--dtype",
        help='"auto" (bf16 where the hardware has it, else fp32), "float32", "bfloat16", "float16" '
        'or "int8" (int8 linear layers, CPU).',
    ),
]
Recheck = Annotated[
    bool,
    typer.Option(
        "--recheck/--no-recheck",
        help="With --dtype int8: re-run close calls in float (a float copy of the model stays in "
        "memory). --no-recheck keeps int8's own labels.",
    ),
]
LongText = Annotated[
    str,
    typer.Option(
        "--long-text",
        help='Texts over --max-length: "truncate", or "chunk" (classify overlapping windows and '
        "average their probabilities; the result says how many windows).",
    ),
]
Encoding = Annotated[str, typer.Option("--encoding", help="Text encoding of input files.")]
Calibrated = Annotated[
    bool,
    typer.Option(
        "--calibration/--no-calibration",
        help="Apply the temperature saved in the model (clearpipe calibrate). --no-calibration: raw "
        "softmax scores, as transformers.pipeline gives. Labels are the same either way.",
    ),
]
MinScore = Annotated[
    float | None,
    typer.Option(
        "--min-score",
        min=0.0,
        max=1.0,
        help='Mark results whose score is below this as not decided ("decided": false); '
        "single-label models. Default: decide every input.",
    ),
]
Lite = Annotated[
    bool,
    typer.Option(
        "--lite",
        help="Run a folder written by `clearpipe export` without torch (clearpipe.lite): a "
        "third of the memory and a quicker start; CPU only, no --long-text chunk.",
    ),
]
OutputPath = Annotated[Path, typer.Option("--output", "-o", help="Where to write the results.")]
NoHeader = Annotated[
    bool,
    typer.Option(
        "--no-header",
        help='CSV/TSV input without a header row: columns are named by number, "1" for the first '
        "(e.g. --text-column 2 --label-column 1).",
    ),
]

Labels = Annotated[
    str | None,
    typer.Option(
        "--labels",
        help='Zero-shot: classify into these comma-separated labels, no training ("World,Sports,'
        'Sci/Tech=science and technology news": a description after "=" is what the text is '
        "compared with). --model is then a sentence encoder or an NLI checkpoint.",
    ),
]
Template = Annotated[
    str | None,
    typer.Option(
        "--template",
        help='Zero-shot: the label prompt, with {} for the label. Default: "The topic is {}."',
    ),
]
Aggregation = Annotated[
    str | None,
    typer.Option(
        "--aggregation",
        help='NER models: how tokens become entities, as transformers\' aggregation_strategy: "none", '
        '"simple", "first", "average", "max", or "word" (the default: whole words, never split '
        "across types).",
    ),
]
MultiLabel = Annotated[
    bool,
    typer.Option("--multi-label", help="Zero-shot: score each label on its own (several may apply)."),
]


def parse_top_k(value: str | None) -> object:
    """Map the --top-k flag to the Python API's `top_k`: unset -> BEST, "all" -> None, "3" -> 3."""
    from clearpipe.errors import InputError
    from clearpipe.postprocess import BEST

    if value is None:
        return BEST
    if value.lower() == "all":
        return None
    try:
        k = int(value)
    except ValueError:
        raise InputError(f'--top-k must be a positive integer or "all", got {value!r}') from None
    if k < 1:
        raise InputError(f'--top-k must be a positive integer or "all", got {value!r}')
    return k
