"""A `Trace` as one self-contained HTML page: the five stages, coloured tokens, per-layer chart
(a token classifier's `TokenTrace`: the sections of `tokens_html`).

Everything is inline (CSS, SVG); the page carries a Content-Security-Policy that forbids any
network request, so it opens the same offline, from an e-mail, or years later.
"""

from __future__ import annotations

import os
import tempfile
from html import escape
from pathlib import Path

from clearpipe.errors import InputError
from clearpipe.trace import tokens_html
from clearpipe.trace.record import SCHEMA_VERSION, Trace, temperature_text
from clearpipe.trace.terminal import attribution_scale, recheck_line, shade
from clearpipe.trace.tokens import TokenTrace

_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin: 1.4em 0 .3em; border-bottom: 1px solid #ddd; }
.meta, .time { color: #777; font-size: .9em; } .time { float: right; font-weight: normal; }
.tok { display: inline-block; padding: 1px 4px; margin: 2px 1px; border-radius: 3px;
       border: 1px solid #ccc; font-family: ui-monospace, monospace; }
.special { font-style: italic; color: #666; }
table { border-collapse: collapse; } td, th { padding: 2px 10px; text-align: left; }
th { border-bottom: 1px solid #ccc; } .num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1a7f37; font-weight: bold; } .bad { color: #c62828; font-weight: bold; }
.prediction { font-size: 1.3em; font-weight: bold; }
"""


def to_html(trace: Trace | TokenTrace) -> str:
    """The trace (a sequence or a token classifier's) as a complete HTML document (a string),
    with no external resources.

    >>> page = to_html(clf.trace("a good film"))  # doctest: +SKIP
    >>> "<svg" in page  # doctest: +SKIP
    True
    """
    if isinstance(trace, TokenTrace):
        title, body = tokens_html.title(trace), tokens_html.sections(trace)
    else:
        title = f"clearpipe trace: {trace.prediction.label}"
        body = [
            _input(trace),
            _tokenizer(trace),
            _model(trace),
            _activation(trace),
            _prediction(trace),
            _attributions(trace),
        ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">model {escape(trace.model_source)} · trace schema v{SCHEMA_VERSION}</p>',
        *body,
        "</body></html>",
    ]
    return "\n".join(parts)


def write_html(trace: Trace | TokenTrace, path: str | os.PathLike[str]) -> Path:
    """Write `to_html(trace)` to `path` atomically: a failed write leaves any old file as it was."""
    target = Path(path)
    if not target.parent.is_dir():
        raise InputError(f"cannot write {target}: folder {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(to_html(trace))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _section(number: int, name: str, time_ms: float | None, body: str) -> str:
    time = "" if time_ms is None else f'<span class="time">{time_ms:.1f} ms</span>'
    return f'<section id="{name}"><h2>{number}. {name}{time}</h2>{body}</section>'


def _input(trace: Trace) -> str:
    stage = trace.input
    rows = [("text", stage.text)] + ([("text_pair", stage.pair)] if stage.pair is not None else [])
    body = "".join(
        f"<tr><th>{name}</th><td>{escape(value)}</td><td class='num'>{len(value)} chars</td></tr>"
        for name, value in rows
    )
    return _section(1, "input", stage.time_ms, f"<table>{body}</table>")


def _tokenizer(trace: Trace) -> str:
    stage = trace.tokenizer
    scale = attribution_scale(trace)
    segments = trace.input.segments
    spans = []
    for t in stage.tokens:
        r, g, b = shade(t.attribution, scale)
        where = (
            "special"
            if t.span is None
            else f"chars {t.span[0]}-{t.span[1]}: {segments[t.segment][t.span[0] : t.span[1]]}"
        )
        tip = f"id {t.id} · {where}" + (
            "" if t.attribution is None else f" · attribution {t.attribution:+.4f}"
        )
        cls = "tok special" if t.special else "tok"
        spans.append(
            f'<span class="{cls}" style="background: rgb({r},{g},{b})" title="{escape(tip)}">{escape(t.token)}</span>'
        )
    tensors = "input_ids, attention_mask" + (", token_type_ids" if stage.has_token_type_ids else "")
    cut = (
        "truncated: kept characters " + ", ".join(f"[0:{k}]" for k in stage.kept_chars)
        if stage.truncated
        else "not truncated"
    )
    body = (
        f"<p>{len(stage.tokens)} tokens → {tensors}, shape {stage.shape} · {cut}</p>"
        f'<p class="tokens">{"".join(spans)}</p>'
    )
    return _section(2, "tokenizer", stage.time_ms, body)


def _model(trace: Trace) -> str:
    stage, tokens = trace.model, trace.tokenizer.tokens
    if stage.unavailable is not None:  # an exported graph: its logits, and why nothing more
        logits = ", ".join(f"{x:.4f}" for x in stage.logits)
        body = f"<p>exported graph → logits {stage.logits_shape}: [{logits}]</p><p>{escape(stage.unavailable)}</p>"
        if stage.recheck is not None:
            body += f"<p class='recheck'>{escape(recheck_line(stage.recheck))}</p>"
        return _section(3, "model", stage.time_ms, body)
    rows = [
        f"<tr><td>embeddings</td><td>{stage.embedding_shape}</td><td class='num'>{stage.embedding_mean_norm:.3f}</td><td></td></tr>"
    ]
    for layer in stage.layers:
        attends = (
            "not returned"
            if layer.first_attends is None
            else ", ".join(f"{escape(tokens[i].token)} {w:.2f}" for i, w in layer.first_attends)
        )
        rows.append(
            f"<tr><td>layer {layer.index}</td><td>{layer.shape}</td>"
            f"<td class='num'>{layer.mean_norm:.3f}</td><td>{attends}</td></tr>"
        )
    logits = ", ".join(f"{x:.4f}" for x in stage.logits)
    body = (
        _layer_chart(trace)
        + "<table><tr><th>stage</th><th>shape</th><th>mean |h|</th>"
        + f"<th>{escape(tokens[0].token) if tokens else 'first token'} attends most to</th></tr>"
        + "".join(rows)
        + "</table>"
        + f"<p>{stage.pooled_kind} vector {stage.pooled_shape} → logits {stage.logits_shape}: [{logits}]</p>"
        + ("" if stage.recheck is None else f"<p class='recheck'>{escape(recheck_line(stage.recheck))}</p>")
    )
    return _section(3, "model", stage.time_ms, body)


def _layer_chart(trace: Trace) -> str:
    """Inline SVG bar chart of the mean hidden-state norm: embeddings, then each layer."""
    stage = trace.model
    values = [("emb", stage.embedding_mean_norm)] + [
        (str(layer.index), layer.mean_norm) for layer in stage.layers
    ]
    top = max((v for _, v in values), default=0.0) or 1.0
    width, height, bar = max(40 * len(values) + 20, 240), 160, 28
    bars = []
    for i, (name, value) in enumerate(values):
        h = 110 * value / top
        x = 20 + 40 * i
        bars.append(
            f'<rect class="bar" x="{x}" y="{130 - h:.1f}" width="{bar}" height="{h:.1f}" fill="#4a7fc1">'
            f"<title>{name}: {value:.3f}</title></rect>"
            f'<text x="{x + bar / 2}" y="146" font-size="11" text-anchor="middle">{name}</text>'
            f'<text x="{x + bar / 2}" y="{126 - h:.1f}" font-size="10" text-anchor="middle">{value:.1f}</text>'
        )
    return (
        f'<svg id="layer-chart" width="{width}" height="{height}" role="img" '
        f'aria-label="mean hidden-state norm per layer">{"".join(bars)}'
        f'<text x="20" y="{height - 2}" font-size="11" fill="#777">mean vector norm per layer</text></svg>'
    )


def _activation(trace: Trace) -> str:
    stage = trace.activation
    rows = "".join(
        f"<tr><td>{escape(label)}</td><td class='num'>{p:.4f}</td></tr>"
        for label, p in stage.probabilities.items()
    )
    scaling = f"<p>{escape(temperature_text(stage.temperature))}</p>" if stage.function == "softmax" else ""
    body = f"<p><b>{stage.function}</b>: {escape(stage.reason)}</p>{scaling}<table>{rows}</table>"
    return _section(4, "activation", stage.time_ms, body)


def _prediction(trace: Trace) -> str:
    stage = trace.prediction
    body = f'<p class="prediction">{escape(stage.label)} <span class="num">{stage.score:.4f}</span></p>'
    return _section(5, "prediction", stage.time_ms, body)


def _attributions(trace: Trace) -> str:
    attr = trace.attributions
    if attr is None:
        return ""
    check = attr.completeness
    verdict = '<span class="ok">ok</span>' if check.ok else '<span class="bad">FAILED</span>'
    scale = attribution_scale(trace)
    words = ""
    for w in attr.words or []:
        r, g, b = shade(w.attribution, scale)
        words += f'<span class="tok" style="background: rgb({r},{g},{b})">{escape(w.text)} {w.attribution:+.3g}</span>'
    body = (
        f"<p>Integrated gradients toward <b>{escape(trace.labels[attr.target])}</b>, baseline "
        f"{escape(attr.baseline_token)}, {attr.steps} steps. Completeness: attributions sum to "
        f"{check.total:.4f}; F(input) − F(baseline) = {check.delta:.4f} (error {check.error:.2%}) {verdict}</p>"
        f'<p class="words">{words}</p>'
        "<p class='meta'>green: pushes toward the predicted label · red: pushes away</p>"
    )
    return f'<section id="attributions"><h2>attributions<span class="time">{attr.time_ms:.1f} ms</span></h2>{body}</section>'
