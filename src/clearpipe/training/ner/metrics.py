"""Entity-level scores as conlleval counts them: an entity is right when its words and its type
both match exactly. Precision, recall and F1 per type and overall (micro), token accuracy, which
gold type was predicted as which, what kind of mistake each wrong entity is, and the sentences
with the most wrong entities.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from clearpipe.training.ner.tags import Chunk, chunks

MISSED = "(missed)"  # confusion column: a gold entity with no predicted entity on its words
SPURIOUS = "(spurious)"  # confusion row: a predicted entity with no gold entity on its words


@dataclass(frozen=True)
class Scores:
    """Precision, recall and F1 of one type (or all, micro-averaged) with their counts."""

    precision: float
    recall: float
    f1: float
    gold: int
    predicted: int
    correct: int

    @classmethod
    def of(cls, gold: int, predicted: int, correct: int) -> Scores:
        p = correct / predicted if predicted else 0.0
        r = correct / gold if gold else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return cls(p, r, f1, gold, predicted, correct)


@dataclass
class NerEvaluation:
    """A tagger's figures on one labelled set; `to_dict()` is the `--json` / `metrics.json` form.

    `confusion[gold][predicted]` counts entities by their exact words: a gold entity with nothing
    predicted on its words is in column "(missed)", a predicted one with no gold entity there in
    row "(spurious)". `mistakes` sorts every wrong gold entity into "type" (its words found with
    another type), "boundary" (its type found on overlapping words) or "missed", and counts the
    predicted entities that touch no gold one as "spurious".
    """

    sentences: int
    tokens: int
    token_accuracy: float
    overall: Scores
    per_type: dict[str, Scores]
    confusion: dict[str, dict[str, int]]
    mistakes: dict[str, int]
    worst: list[dict] = field(default_factory=list)
    scores: dict | None = None  # how far the words' tag scores can be trusted (`evaluation.word_scores`)

    @property
    def f1(self) -> float:
        return self.overall.f1

    def to_dict(self) -> dict:
        return asdict(self)


def score_entities(
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    words: Sequence[Sequence[str]] | None = None,
    lines: Sequence[int] | None = None,
    n_worst: int = 0,
) -> NerEvaluation:
    """Score predicted IOB2 tags against gold tags, sentence by sentence; with `words` (and the
    sentences' `lines`), list the `n_worst` sentences with the most wrong entities.

    >>> ev = score_entities([["B-PER", "I-PER", "O"]], [["B-PER", "O", "O"]])
    >>> (ev.overall.precision, ev.overall.recall, round(ev.token_accuracy, 3))
    (0.0, 0.0, 0.667)
    """
    counts: dict[str, Counter] = {"gold": Counter(), "predicted": Counter(), "correct": Counter()}
    confusion: dict[str, Counter] = {}
    mistakes: Counter = Counter()
    right_tokens = tokens = 0
    wrong_per_sentence = []
    for i, (g_tags, p_tags) in enumerate(zip(gold, predicted, strict=True)):
        if len(g_tags) != len(p_tags):
            raise ValueError(f"sentence {i}: {len(g_tags)} gold tags but {len(p_tags)} predicted")
        tokens += len(g_tags)
        right_tokens += sum(g == p for g, p in zip(g_tags, p_tags, strict=True))
        g_chunks, p_chunks = chunks(g_tags), chunks(p_tags)
        correct = set(g_chunks) & set(p_chunks)
        counts["gold"].update(c.type for c in g_chunks)
        counts["predicted"].update(c.type for c in p_chunks)
        counts["correct"].update(c.type for c in correct)
        _confuse(g_chunks, p_chunks, confusion)
        mistakes.update(_mistakes(g_chunks, p_chunks, correct))
        wrong_per_sentence.append(len(g_chunks) + len(p_chunks) - 2 * len(correct))
    types = sorted(counts["gold"].keys() | counts["predicted"].keys())
    per_type = {t: Scores.of(counts["gold"][t], counts["predicted"][t], counts["correct"][t]) for t in types}
    totals = [sum(c.values()) for c in counts.values()]
    worst = _worst(gold, predicted, words, lines, wrong_per_sentence, n_worst) if words else []
    return NerEvaluation(
        sentences=len(gold),
        tokens=tokens,
        token_accuracy=right_tokens / tokens if tokens else 0.0,
        overall=Scores.of(*totals),
        per_type=per_type,
        confusion={g: dict(sorted(row.items())) for g, row in sorted(confusion.items())},
        mistakes={k: mistakes[k] for k in ("type", "boundary", "missed", "spurious")},
        worst=worst,
    )


def _confuse(gold: list[Chunk], predicted: list[Chunk], confusion: dict[str, Counter]) -> None:
    on_words = {(c.start, c.end): c.type for c in predicted}
    gold_words = {(c.start, c.end) for c in gold}
    for c in gold:
        confusion.setdefault(c.type, Counter())[on_words.get((c.start, c.end), MISSED)] += 1
    for c in predicted:
        if (c.start, c.end) not in gold_words:
            confusion.setdefault(SPURIOUS, Counter())[c.type] += 1


def _mistakes(gold: list[Chunk], predicted: list[Chunk], correct: set[Chunk]) -> Counter:
    found: Counter = Counter()
    for g in gold:
        if g in correct:
            continue
        touching = [p for p in predicted if p.start < g.end and g.start < p.end]
        if any((p.start, p.end) == (g.start, g.end) for p in touching):
            found["type"] += 1
        elif any(p.type == g.type for p in touching):
            found["boundary"] += 1
        else:
            found["missed"] += 1
    found["spurious"] += sum(not any(p.start < g.end and g.start < p.end for g in gold) for p in predicted)
    return found


def _worst(gold, predicted, words, lines, wrong: list[int], n: int) -> list[dict]:
    order = sorted((i for i, w in enumerate(wrong) if w), key=lambda i: (-wrong[i], i))[:n]
    return [
        {
            "line": lines[i] if lines is not None else i + 1,
            "wrong": wrong[i],
            "text": " ".join(words[i]),
            "gold": _spelled(gold[i], words[i]),
            "predicted": _spelled(predicted[i], words[i]),
        }
        for i in order
    ]


def _spelled(tags: Sequence[str], words: Sequence[str]) -> list[str]:
    return [f"{c.type}: {' '.join(words[c.start : c.end])}" for c in chunks(tags)]
