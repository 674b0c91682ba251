"""The CLI's named entities: `classify` and `predict` with a token-classification model.

`classify` prints each text with its entities marked (rich), or with `--json` one JSON list of
entities per line; `predict` (`clearpipe.cli.predict`) writes an `entities` column, or one row per
entity, through the classifiers' bulk path (`clearpipe.bulk.entities`).
"""

from __future__ import annotations

import json

from clearpipe.errors import InputError

STYLES = ("bold cyan", "bold magenta", "bold green", "bold yellow", "bold blue", "bold red")


def is_entities(clf: object) -> bool:
    """Whether a loaded classifier finds entities (see `clearpipe.bulk.entities.is_entities`)."""
    from clearpipe.bulk.entities import is_entities as finds_entities

    return finds_entities(clf)


def check_aggregation(strategy: str | None, clf: object) -> str | None:
    """`--aggregation` as the strategy's name; refused for a model that finds no entities, or a
    strategy that does not exist."""
    if strategy is None:
        return None
    if not is_entities(clf):
        raise InputError("--aggregation needs a token-classification (NER) model")
    from clearpipe.entities.aggregation import check_strategy

    return check_strategy(strategy)


def refuse(**given: bool) -> None:
    """Refuse the flags, named in `given`, that mean nothing to a token classifier."""
    for flag, present in given.items():
        if present:
            raise InputError(f"{flag} does not apply to a token-classification (NER) model")


def classify(clf: object, texts: list[str], as_json: bool, strategy: str | None = None) -> None:
    """Print every text's entities: marked in the text, or one JSON list per line."""
    results = clf(list(texts), aggregation_strategy=strategy) if texts else []
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
