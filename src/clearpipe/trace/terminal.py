"""The terminal view of a `Trace`: one block per stage, tokens coloured by attribution.

Green tokens push toward the predicted label, red ones away from it; the stronger the colour,
the larger the attribution relative to the largest one in the text.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from clearpipe.trace import tokens_terminal
from clearpipe.trace.record import Recheck, Token, Trace, temperature_text
from clearpipe.trace.tokens import TokenTrace

Rgb = tuple[int, int, int]


def shade(score: float | None, scale: float) -> Rgb:
    """Background colour for an attribution: white at 0, green (toward the label) or red (away).

    >>> shade(1.0, 1.0), shade(-1.0, 1.0), shade(0.0, 1.0)
    ((80, 200, 120), (230, 90, 90), (255, 255, 255))
    """
    if score is None or scale <= 0:
        return (255, 255, 255)
    strength = min(abs(score) / scale, 1.0)
    full = (80, 200, 120) if score > 0 else (230, 90, 90)
    return tuple(round(255 + (c - 255) * strength) for c in full)  # type: ignore[return-value]


def attribution_scale(trace: Trace) -> float:
    """The largest absolute token attribution, which gets the strongest colour."""
    scores = [abs(t.attribution) for t in trace.tokenizer.tokens if t.attribution is not None]
    return max(scores, default=0.0)


def render(trace: Trace | TokenTrace, console: Console | None = None, words: bool = False) -> None:
    """Print `trace` to the terminal; `words=True` lists attributions per word, not per token (a
    token classifier's trace is `tokens_terminal`'s view).

    >>> render(clf.trace("a good film"))  # doctest: +SKIP
    """
    if isinstance(trace, TokenTrace):
        tokens_terminal.render(trace, console)
        return
    console = console or Console(soft_wrap=False)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column()
    grid.add_column(justify="right", style="dim", no_wrap=True)
    for name, body, time_ms in _rows(trace, words):
        grid.add_row(name, body, "" if time_ms is None else f"{time_ms:.1f} ms")
    console.print(Text(f"clearpipe trace · {trace.model_source}", style="bold"))
    console.print(grid)


def _rows(trace: Trace, words: bool) -> list[tuple[str, Group | Text, float | None]]:
    rows = [
        ("1 input", _input(trace), trace.input.time_ms),
        ("2 tokenizer", _tokenizer(trace), trace.tokenizer.time_ms),
        ("3 model", _model(trace), trace.model.time_ms),
        ("4 activation", _activation(trace), trace.activation.time_ms),
        (
            "5 prediction",
            Text(f"{trace.prediction.label}  {trace.prediction.score:.4f}", style="bold"),
            trace.prediction.time_ms,
        ),
    ]
    if trace.attributions is not None:
        rows.append(("attributions", _attributions(trace, words), trace.attributions.time_ms))
    return rows


def _input(trace: Trace) -> Text:
    stage = trace.input
    text = Text(repr(stage.text)).append(f"  ({len(stage.text)} chars)", style="dim")
    if stage.pair is not None:
        text.append("\npair ").append(repr(stage.pair)).append(f"  ({len(stage.pair)} chars)", style="dim")
    return text


def _tokenizer(trace: Trace) -> Group:
    stage = trace.tokenizer
    tensors = "input_ids, attention_mask" + (", token_type_ids" if stage.has_token_type_ids else "")
    cut = (
        "truncated: kept characters " + ", ".join(f"[0:{k}]" for k in stage.kept_chars)
        if stage.truncated
        else "not truncated"
    )
    summary = Text(f"{len(stage.tokens)} tokens -> {tensors} {stage.shape} · {cut}")
    return Group(summary, coloured_tokens(stage.tokens, attribution_scale(trace)))


def coloured_tokens(tokens: list[Token], scale: float) -> Text:
    """The tokens in order, each on its attribution colour; special tokens dim."""
    text = Text()
    for token in tokens:
        r, g, b = shade(token.attribution, scale)
        style = f"black on rgb({r},{g},{b})" + (" dim italic" if token.special else "")
        text.append(token.token, style=style).append(" ")
    return text


def _model(trace: Trace) -> Group:
    stage, tokens = trace.model, trace.tokenizer.tokens
    if stage.unavailable is not None:  # an exported graph: its logits, and why nothing more
        logits = ", ".join(f"{x:.4f}" for x in stage.logits)
        lines = [
            Text(f"exported graph -> logits {stage.logits_shape} [{logits}]"),
            Text(stage.unavailable, style="dim"),
        ]
        if stage.recheck is not None:
            lines.append(Text(recheck_line(stage.recheck), style="yellow"))
        return Group(*lines)
    lines = [Text(f"embeddings {stage.embedding_shape}  |h| {stage.embedding_mean_norm:.2f}")]
    for layer in stage.layers:
        line = Text(f"layer {layer.index:>2}  {layer.shape}  |h| {layer.mean_norm:.2f}")
        if layer.first_attends is not None:
            top = "  ".join(f"{tokens[i].token} {w:.2f}" for i, w in layer.first_attends)
            line.append(f"  {tokens[0].token} attends: ", style="dim").append(top)
        lines.append(line)
    if stage.attention != "eager":
        lines.append(Text("attention weights: not returned by this model", style="dim"))
    logits = ", ".join(f"{x:.4f}" for x in stage.logits)
    lines.append(Text(f"{stage.pooled_kind} {stage.pooled_shape} -> logits {stage.logits_shape} [{logits}]"))
    if stage.recheck is not None:
        lines.append(Text(recheck_line(stage.recheck), style="yellow"))
    return Group(*lines)


def recheck_line(recheck: Recheck) -> str:
    """One sentence saying that an int8 close call was re-run in float, with int8's logits."""
    fast = ", ".join(f"{x:.4f}" for x in recheck.fast_logits)
    return (
        f"int8 gave [{fast}], a close call (top-two gap under {recheck.margin:.3f}): "
        f"these stages were re-run in {recheck.dtype}"
    )


def _activation(trace: Trace) -> Group:
    stage = trace.activation
    scores = "  ".join(f"{label} {p:.4f}" for label, p in stage.probabilities.items())
    lines = [Text(f"{stage.function}: {stage.reason}"), Text(scores)]
    if stage.function == "softmax":
        lines.insert(1, Text(temperature_text(stage.temperature)))
    return Group(*lines)


def _attributions(trace: Trace, words: bool) -> Group:
    attr = trace.attributions
    assert attr is not None
    check = attr.completeness
    mark = Text("ok", style="green") if check.ok else Text("FAILED", style="bold red")
    head = Text(
        f"integrated gradients toward {trace.labels[attr.target]} · baseline {attr.baseline_token} · "
        f"{attr.steps} steps · completeness: sum {check.total:.4f} vs "
        f"F(x)-F(x0) {check.delta:.4f} (error {check.error:.2%}) "
    ).append_text(mark)
    scale = attribution_scale(trace)
    body = Text()
    if words and attr.words is not None:
        items = [(w.text, w.attribution) for w in attr.words]
    else:
        items = [(t.token, t.attribution or 0.0) for t in trace.tokenizer.tokens if not t.special]
    for label, score in items:
        r, g, b = shade(score, scale)
        body.append(f"{label} {score:+.3g}", style=f"black on rgb({r},{g},{b})").append("  ")
    legend = Text("green: pushes toward the predicted label · red: pushes away", style="dim")
    return Group(head, body, legend)
