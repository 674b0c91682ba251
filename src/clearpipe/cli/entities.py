"""The CLI's named entities: `classify` and `predict` with a token-classification model.

`classify` prints each text with its entities marked (rich), or with `--json` one JSON list of
entities per line; `predict` writes an `entities` column, or one row per entity
(`clearpipe.bulk.entities`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from clearpipe.errors import InputError

STYLES = ("bold cyan", "bold magenta", "bold green", "bold yellow", "bold blue", "bold red")


def is_entities(clf: object) -> bool:
    """Whether a loaded classifier finds entities (a `clearpipe.entities.TokenClassifier`, or with
    `--lite` a `clearpipe.lite.entities.LiteTokenClassifier`): its `task` says so."""
    return getattr(clf, "task", None) == "token-classification"


def refuse(**given: bool) -> None:
    """Refuse the flags, named in `given`, that mean nothing to a token classifier."""
    for flag, present in given.items():
        if present:
            raise InputError(f"{flag} does not apply to a token-classification (NER) model")


def classify(clf: object, texts: list[str], as_json: bool) -> None:
    """Print every text's entities: marked in the text, or one JSON list per line."""
    results = clf(list(texts)) if texts else []
    if as_json:
        for found in results:
            print(json.dumps(found, ensure_ascii=False))
        return
    from rich.console import Console

    console = Console(soft_wrap=True, highlight=False)
    kinds: dict[str, str] = {}
    for text, found in zip(texts, results, strict=True):
        console.print(marked(text, found, kinds))


def marked(text: str, found: list[dict], kinds: dict[str, str]) -> object:
    """The text as rich `Text`, each entity styled by its type and followed by the type's name.

    >>> marked("Ada met Alan", [{"entity_group": "PER", "score": 0.9, "start": 0, "end": 3}], {}).plain
    'Ada [PER] met Alan'
    """
    from rich.text import Text

    out = Text()
    at = 0
    for entity in sorted(found, key=lambda e: e["start"]):
        kind = str(entity.get("entity_group", entity.get("entity")))
        style = kinds.setdefault(kind, STYLES[len(kinds) % len(STYLES)])
        start = max(entity["start"], at)
        out.append(text[at:start])
        out.append(text[start : entity["end"]], style=style)
        out.append(f" [{kind}]", style="dim")
        at = max(at, entity["end"])
    out.append(text[at:])
    return out


def predict(
    clf: object,
    input: Path,
    output: Path,
    text_column: str | None,
    one_row_per_entity: bool,
    chunk_rows: int,
    encoding: str,
    header: bool,
) -> None:
    """`predict` with a token classifier: see `clearpipe.bulk.entities`."""
    from clearpipe.bulk.entities import EntityJob, predict_entities_file

    job = EntityJob(input, output, text_column, one_row_per_entity, chunk_rows, encoding, header)
    rows = predict_entities_file(clf, job)  # type: ignore[arg-type]
    what = "entity rows" if one_row_per_entity else "rows"
    print(f"wrote {rows} {what} to {output}", file=sys.stderr)
