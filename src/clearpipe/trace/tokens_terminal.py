"""The terminal view of a `TokenTrace` (a token classifier's trace): the stages with their
timings, then the per-token table (token, word id, characters, top labels), the words or tokens
aggregation tagged, and the entities with the tokens each was grouped from."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from clearpipe.trace.tokens import TOP_LABELS, TokenTrace


def render(trace: TokenTrace, console: Console | None = None) -> None:
    """Print `trace` to the terminal.

    >>> render(ner.trace("Ada met Alan."))  # doctest: +SKIP
    """
    console = console or Console(soft_wrap=False)
    console.print(Text(f"clearpipe trace · {trace.model_source} · token classification", style="bold"))
    console.print(_stages(trace))
    console.print(_tokens(trace))
    console.print(_units(trace))
    console.print(_entities(trace))
    console.print(Text(trace.unavailable[0]["why"], style="dim"))


def _stages(trace: TokenTrace) -> Table:
    n, k = len(trace.tokens), len(trace.labels)
    windows = ", ".join(f"[{a}:{b}]" for a, b in trace.windows)
    rows = [
        ("1 input", f"{trace.text!r}  ({len(trace.text)} chars)", "input"),
        (
            "2 tokenizer",
            f"{n} tokens, never truncated · {len(trace.windows)} window(s) of at most {trace.max_length} "
            f"tokens, stride {trace.stride}: {windows}",
            "tokenizer",
        ),
        ("3 model", f"{trace.dtype} -> logits ({n}, {k}), windows merged", "model"),
        ("4 activation", f"softmax over each token's {k} logits", "activation"),
        (
            "5 aggregation",
            f"strategy {trace.strategy!r}: {len(trace.units)} {_unit_kind(trace)} -> "
            f"{len(trace.entities)} entities (ignoring {', '.join(trace.ignore_labels) or 'none'})",
            "aggregation",
        ),
    ]
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    grid.add_column(justify="right", style="dim", no_wrap=True)
    for name, body, key in rows:
        grid.add_row(name, body, f"{trace.times[key]:.1f} ms")
    return grid


def _tokens(trace: TokenTrace) -> Table:
    table = Table(title="tokens", title_justify="left", show_edge=False)
    for name in ("#", "token", "word", "chars", "text"):
        table.add_column(name, no_wrap=True)
    table.add_column(f"top {TOP_LABELS} labels (softmax)")
    for row in trace.tokens:
        span = "" if row.span is None else f"{row.span[0]}-{row.span[1]}"
        text = "" if row.span is None else trace.text[row.span[0] : row.span[1]]
        top = "  ".join(f"{label} {p:.3f}" for label, p in row.top)
        style = "dim italic" if row.special else None
        word = "" if row.word is None else str(row.word)
        table.add_row(str(row.index), row.token, word, span, text, top, style=style)
    return table


def _units(trace: TokenTrace) -> Table:
    table = Table(title=f"{_unit_kind(trace)} ({trace.strategy})", title_justify="left", show_edge=False)
    for name in ("tokens", "text", "chars", "label", "score"):
        table.add_column(name, no_wrap=True)
    for unit in trace.units:
        table.add_row(
            _indices(unit.tokens), unit.text, f"{unit.start}-{unit.end}", unit.label, f"{unit.score:.4f}"
        )
    return table


def _entities(trace: TokenTrace) -> Table | Text:
    if not trace.entities:
        return Text("entities: none", style="bold")
    table = Table(title="entities", title_justify="left", show_edge=False)
    for name in ("entity", "word", "chars", "score", "tokens"):
        table.add_column(name, no_wrap=True)
    for found in trace.entities:
        e = found.answer
        kind = str(e.get("entity_group", e.get("entity")))
        table.add_row(
            Text(kind, style="bold"),
            str(e["word"]),
            f"{e['start']}-{e['end']}",
            f"{float(e['score']):.4f}",
            _indices(found.tokens),
        )
    return table


def _unit_kind(trace: TokenTrace) -> str:
    return "words" if trace.strategy in ("first", "average", "max", "word") else "tokens"


def _indices(tokens: tuple[int, ...]) -> str:
    return ",".join(str(i) for i in tokens)
