"""A `TokenTrace` (a token classifier's trace) as the sections of one self-contained HTML page
(`trace.html.to_html` wraps them): the text with its entities marked, the stages with their
timings, the per-token table, the words or tokens aggregation tagged, and the entities."""

from __future__ import annotations

from html import escape

from clearpipe.trace.tokens import TOP_LABELS, TokenTrace

_COLOURS = ("#cfe8ff", "#ffd9e0", "#d7f5d0", "#fff0c2", "#e6dcff", "#ffe0c7")


def title(trace: TokenTrace) -> str:
    """The page's title: how many entities the text holds."""
    return f"clearpipe trace: {len(trace.entities)} entities"


def sections(trace: TokenTrace) -> list[str]:
    """The page's body, one HTML string per section.

    >>> "<table" in "".join(sections(ner.trace("Ada met Alan.")))  # doctest: +SKIP
    True
    """
    n, k = len(trace.tokens), len(trace.labels)
    windows = ", ".join(f"[{a}:{b}]" for a, b in trace.windows)
    kind = "words" if trace.strategy in ("first", "average", "max", "word") else "tokens"
    return [
        _section(1, "input", trace.times["input"], f"<p>{_marked(trace)}</p>"),
        _section(
            2,
            "tokenizer",
            trace.times["tokenizer"],
            f"<p>{n} tokens, never truncated · {len(trace.windows)} window(s) of at most "
            f"{trace.max_length} tokens, stride {trace.stride}: {windows}</p>",
        ),
        _section(
            3,
            "model",
            trace.times["model"],
            f"<p>{escape(trace.dtype)} → logits ({n}, {k}), windows merged</p>",
        ),
        _section(4, "activation", trace.times["activation"], _tokens(trace)),
        _section(5, "aggregation", trace.times["aggregation"], _aggregation(trace, kind)),
        f"<p class='meta'>{escape(trace.unavailable[0]['why'])}</p>",
    ]


def _section(number: int, name: str, time_ms: float, body: str) -> str:
    return f'<section id="{name}"><h2>{number}. {name}<span class="time">{time_ms:.1f} ms</span></h2>{body}</section>'


def _marked(trace: TokenTrace) -> str:
    """The text, each entity on its type's colour with the type after it."""
    colours: dict[str, str] = {}
    out, at = [], 0
    for found in sorted(trace.entities, key=lambda f: f.answer["start"]):
        e = found.answer
        kind = str(e.get("entity_group", e.get("entity")))
        colour = colours.setdefault(kind, _COLOURS[len(colours) % len(_COLOURS)])
        start = max(int(e["start"]), at)
        out.append(escape(trace.text[at:start]))
        out.append(
            f'<span class="tok" style="background: {colour}">{escape(trace.text[start : e["end"]])}'
            f" <b>{escape(kind)}</b></span>"
        )
        at = max(at, int(e["end"]))
    out.append(escape(trace.text[at:]))
    return "".join(out)


def _tokens(trace: TokenTrace) -> str:
    rows = []
    for row in trace.tokens:
        span = "" if row.span is None else f"{row.span[0]}-{row.span[1]}"
        text = "" if row.span is None else trace.text[row.span[0] : row.span[1]]
        top = " · ".join(f"{escape(label)} {p:.3f}" for label, p in row.top)
        cls = " class='special'" if row.special else ""
        rows.append(
            f"<tr{cls}><td class='num'>{row.index}</td><td>{escape(row.token)}</td>"
            f"<td class='num'>{'' if row.word is None else row.word}</td><td>{span}</td>"
            f"<td>{escape(text)}</td><td>{top}</td></tr>"
        )
    head = f"<tr><th>#</th><th>token</th><th>word</th><th>chars</th><th>text</th><th>top {TOP_LABELS} labels (softmax)</th></tr>"
    return f"<table id='tokens'>{head}{''.join(rows)}</table>"


def _aggregation(trace: TokenTrace, kind: str) -> str:
    units = "".join(
        f"<tr><td>{_indices(u.tokens)}</td><td>{escape(u.text)}</td><td>{u.start}-{u.end}</td>"
        f"<td>{escape(u.label)}</td><td class='num'>{u.score:.4f}</td></tr>"
        for u in trace.units
    )
    entities = "".join(
        f"<tr><td><b>{escape(str(f.answer.get('entity_group', f.answer.get('entity'))))}</b></td>"
        f"<td>{escape(str(f.answer['word']))}</td><td>{f.answer['start']}-{f.answer['end']}</td>"
        f"<td class='num'>{float(f.answer['score']):.4f}</td><td>{_indices(f.tokens)}</td></tr>"
        for f in trace.entities
    )
    ignored = ", ".join(trace.ignore_labels) or "none"
    return (
        f"<p>strategy <b>{escape(trace.strategy)}</b>: {len(trace.units)} {kind} → "
        f"{len(trace.entities)} entities (ignoring {escape(ignored)})</p>"
        f"<table id='units'><tr><th>tokens</th><th>text</th><th>chars</th><th>label</th><th>score</th></tr>{units}</table>"
        f"<h3>entities</h3><table id='entities'><tr><th>entity</th><th>word</th><th>chars</th><th>score</th>"
        f"<th>tokens</th></tr>{entities}</table>"
    )


def _indices(tokens: tuple[int, ...]) -> str:
    return ",".join(str(i) for i in tokens)
