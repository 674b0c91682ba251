"""The `clearpipe` entry point. Commands import their heavy dependencies lazily so that
`clearpipe --help` and a user's typo answer at once."""

from __future__ import annotations

import sys

import typer

from clearpipe.cli import startup
from clearpipe.cli.bases import bases
from clearpipe.cli.calibrate import calibrate
from clearpipe.cli.classify import classify
from clearpipe.cli.embed import embed
from clearpipe.cli.evaluate import evaluate
from clearpipe.cli.export import export
from clearpipe.cli.predict import predict
from clearpipe.cli.serve import serve
from clearpipe.cli.trace import trace
from clearpipe.cli.train import train

app = typer.Typer(
    name="clearpipe",
    help="Turn raw text into trustworthy labels, fast, and see every step on the way.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: one line per option in 80 columns (rich boxed them)
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command()(classify)
app.command()(predict)
app.command()(train)
app.command()(evaluate)
app.command()(calibrate)
app.command()(serve)
app.command()(trace)
app.command()(export)
app.command()(embed)
app.command()(bases)


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        from clearpipe import __version__

        print(f"clearpipe {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        print(ctx.get_help())
        raise typer.Exit(2)


def main() -> None:
    """Run the CLI; a user's mistake prints one `error:` line and exits 2, without a traceback.

    So does a failed file operation (a read-only folder, a full disk): the system's reason and
    the path it names are what the user needs, and a traceback adds nothing to them.
    """
    from clearpipe.errors import ClearpipeError

    startup.pause_collector()
    try:
        app()
    except ClearpipeError as exc:
        print(f"clearpipe: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        if exc.errno is None:
            raise  # not the system's refusal: a bug, which keeps its traceback
        print(f"clearpipe: error: {os_error(exc)}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("clearpipe: interrupted", file=sys.stderr)
        sys.exit(130)


def os_error(exc: OSError) -> str:
    """A failed file operation as one line: the path(s) it names, then the system's reason.

    >>> os_error(NotADirectoryError(20, "Not a directory", "notes.txt/out.csv"))
    'notes.txt/out.csv: Not a directory'
    """
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {exc.strerror}" if paths else str(exc.strerror)
