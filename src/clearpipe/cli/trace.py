"""`clearpipe trace`: follow one prediction through every stage, with token attributions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clearpipe.cli import options, startup
from clearpipe.cli.loading import LoadFlags, from_flags


def trace(
    text: Annotated[str, typer.Argument(help="The text to classify and trace.")],
    model: options.Model = None,
    pair: Annotated[
        str | None, typer.Option("--pair", help="A second text, for pair tasks (premise/hypothesis, ...).")
    ] = None,
    max_length: options.MaxLength = None,
    device: options.Device = "auto",
    calibrated: options.Calibrated = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the trace as JSON (schema in docs/TRACE.md) instead.")
    ] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write the trace as one self-contained HTML page.")
    ] = None,
    words: Annotated[
        bool, typer.Option("--words", help="Show attributions per word rather than per sub-word token.")
    ] = False,
    attributions: Annotated[
        bool, typer.Option("--attributions/--no-attributions", help="Compute token attributions.")
    ] = True,
) -> None:
    """Classify TEXT and show each stage: input, tokenizer, model layers, activation, prediction."""
    from clearpipe.cli.outputs import check_file

    if html is not None:
        check_file(html, "--html", "trace.html")
    # One row at a time: the trace follows a single input.
    clf = from_flags(LoadFlags, locals(), batch_size=1).load()
    startup.resume_collector()
    result = clf.trace(text, pair=pair, attributions=attributions)
    if html is not None:
        from clearpipe.trace.html import write_html

        write_html(result, html)
    if as_json:
        print(result.to_json())
        return
    from clearpipe.trace.terminal import render

    render(result, words=words)
    if html is not None:
        print(f"wrote {html}")
