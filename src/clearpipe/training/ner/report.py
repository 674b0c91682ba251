"""What a named-entity run shows and leaves behind: the epoch table (with each epoch's seconds),
the final figures, and `metrics.json`, `training_config.json`, `trace.json` and the model card.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from clearpipe.training import report
from clearpipe.training.ner.data import NerData
from clearpipe.training.ner.metrics import NerEvaluation
from clearpipe.training.report import TRACE_VERSION, _write_json, library_versions

# Where a split's text comes from and under what terms, for the card: CoNLL-2003 is Reuters news.
CONLL2003_TERMS = (
    "The CoNLL-2003 English data is Reuters news text (RCV1), distributed for research use only "
    "(Tjong Kim Sang and De Meulder, 2003); this model is trained on it and inherits those terms."
)


class EpochTable(report.EpochTable):
    """The epoch table with entity F1 and token accuracy on validation; its seconds are the
    epoch's training and validation."""

    SCORES = (("f1", "entity F1"), ("token_accuracy", "token acc"))

    def __init__(self, enabled: bool = True) -> None:
        super().__init__("f1", enabled)


@dataclass
class NerRun:
    """Everything a finished run reports."""

    config: dict
    resolved: dict
    data: NerData
    epochs: list[dict]
    evaluations: dict[str, NerEvaluation]
    best_epoch: float | None
    global_step: int
    seconds: float


def write_run(output: Path, run: NerRun) -> None:
    """Print the final figures and write metrics.json, training_config.json, trace.json, README.md."""
    for name, ev in run.evaluations.items():
        types = ", ".join(f"{t} {s.f1:.4f}" for t, s in ev.per_type.items())
        print(
            f"{name}: entity F1 {ev.f1:.4f} (precision {ev.overall.precision:.4f}, recall {ev.overall.recall:.4f}; "
            f"{types}), token accuracy {ev.token_accuracy:.4f}, {ev.sentences} sentences"
            + ("" if ev.scores is None else f", word score ECE {ev.scores['ece']:.4f}")
        )
    print(f"saved to {output} ({run.global_step} optimizer steps, {run.seconds:.0f} s)", flush=True)
    _write_json(output / "metrics.json", {name: ev.to_dict() for name, ev in run.evaluations.items()})
    _write_json(
        output / "training_config.json",
        {"arguments": run.config, "resolved": run.resolved, "versions": library_versions()},
    )
    _write_json(
        output / "trace.json",
        {
            "version": TRACE_VERSION,
            "task": "token-classification",
            "epochs": run.epochs,
            "best_epoch": run.best_epoch,
            "optimizer_steps": run.global_step,
            "seconds": round(run.seconds, 1),
            "data": run.data.to_dict(),
        },
    )
    (output / "README.md").write_text(model_card(output, run), encoding="utf-8")


def model_card(output: Path, run: NerRun) -> str:
    """A Hugging Face model card: data and its terms, tags, settings, entity scores and use."""
    cfg = run.config
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: token-classification",
        "tags: [clearpipe, token-classification, ner]",
        "---",
        "",
        f"# {output.name}",
        "",
        f"A named-entity tagger fine-tuned from `{cfg['base']}` with `clearpipe train` on "
        f"{datetime.now(UTC):%Y-%m-%d}: one IOB2 tag per word, read from the word's first sub-token.",
        "",
        "## Tags",
        "",
        ", ".join(f"`{t}`" for t in run.data.tags),
        "",
        "## Data",
        "",
        *[
            f"- {s.name}: `{s.source}` ({s.format}, {s.scheme}), {s.sentences} sentences, {s.tokens} tokens, "
            f"{sum(s.entities.values())} entities ("
            + ", ".join(f"{t} {n}" for t, n in s.entities.items())
            + ")"
            for s in run.data.report
        ],
        "",
        *_terms(run.data),
        "## Training",
        "",
        "| setting | value |",
        "| --- | --- |",
        *[
            f"| {k} | {v} |"
            for k, v in {
                "learning rate": cfg["learning_rate"],
                "epochs": cfg["epochs"],
                "batch size": cfg["batch_size"],
                "max length": run.resolved["max_length"],
                "best checkpoint by": "entity F1 on validation",
                "best epoch": run.best_epoch,
                "optimizer steps": run.global_step,
                "seed": cfg["seed"],
                "saved as": cfg["save_dtype"],
                "wall time (s)": round(run.seconds),
                **_teacher_rows(cfg.get("distillation")),
                **_unlabeled_rows(cfg.get("unlabeled"), run.resolved.get("unlabeled_sentences", 0)),
            }.items()
        ],
        "",
        "## Results",
        "",
        "Entities count as right when their words and type both match (conlleval's counting).",
        "",
        "| set | type | precision | recall | F1 | entities |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, ev in run.evaluations.items():
        for kind, s in [*ev.per_type.items(), ("overall", ev.overall)]:
            lines.append(f"| {name} | {kind} | {s.precision:.4f} | {s.recall:.4f} | {s.f1:.4f} | {s.gold} |")
    lines += [
        "",
        "## Use",
        "",
        "It is a plain Hugging Face checkpoint: "
        '`transformers.pipeline("token-classification", model=..., aggregation_strategy="first")` loads it. '
        "`metrics.json` holds the full figures (confusion of types, mistakes, worst sentences).",
        "",
    ]
    return "\n".join(lines)


def _teacher_rows(distillation: dict | None) -> dict[str, object]:
    if not distillation:
        return {}
    return {
        "distilled from": ", ".join(f"`{t}`" for t in distillation["teachers"]),
        "distillation": f"per word: {distillation['weight']} x KL at temperature "
        f"{distillation['temperature']} + {1 - distillation['weight']:g} x cross-entropy",
    }


def _unlabeled_rows(source: str | None, sentences: int) -> dict[str, object]:
    if not source:
        return {}
    return {"unlabeled sentences": f"{sentences} from `{source}`, tagged by the teacher alone"}


def _terms(data: NerData) -> list[str]:
    if any("conll2003" in Path(s.source).parts for s in data.report):
        return [CONLL2003_TERMS, ""]
    return []
