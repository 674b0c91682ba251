"""`clearpipe predict` with a token classifier: the rows a chunk of input becomes.

The bulk path is the classifiers' (`bulk.local` locally, with `--resume`; `bulk.ray` on a
cluster): this module only says which columns a token classifier adds and fills them. By default
the input's rows come back with an `entities` column, a JSON list of `{"entity_group", "score",
"word", "start", "end"}` (`[]` for a row without entities, an empty text included); with
`one_row_per_entity`, one row per entity (the row's own columns, then `row`, the input's 1-based
row number, and `entity_group`, `score`, `word`, `start`, `end`), so a row without entities
writes nothing and a part holds as many rows as its chunk has entities.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from clearpipe.errors import InputError
from clearpipe.tables.read import Chunk, Row

ENTITY_FIELDS = ("entity_group", "score", "word", "start", "end")
TOKEN_FIELDS = ("entity", "score", "index", "word", "start", "end")  # aggregation_strategy "none"
COLUMN, ROWS = "column", "rows"  # `Plan.entities`: an entities column, or one row per entity


class EntityFinder(Protocol):
    """What bulk prediction needs of a token classifier (`clearpipe.entities.TokenClassifier`, or
    with `--lite` `clearpipe.lite.entities.LiteTokenClassifier`)."""

    @property
    def source(self) -> str: ...

    def __call__(
        self, inputs: object, aggregation_strategy: str | None = None
    ) -> list[dict[str, object]] | list[list[dict[str, object]]]: ...


def is_entities(clf: object) -> bool:
    """Whether a loaded model finds entities: a token classifier's `task` says so.

    >>> is_entities(clearpipe.load("ner"))  # doctest: +SKIP
    True
    """
    return getattr(clf, "task", None) == "token-classification"


def entity_columns(one_row_per_entity: bool, strategy: str | None = None) -> list[str]:
    """The columns `predict` adds: `entities`, or `row` and the entity's fields (a token's, in
    transformers' shape, for `aggregation_strategy="none"`).

    >>> entity_columns(True)
    ['row', 'entity_group', 'score', 'word', 'start', 'end']
    """
    if not one_row_per_entity:
        return ["entities"]
    return ["row", *(TOKEN_FIELDS if strategy == "none" else ENTITY_FIELDS)]


def check_clash(
    found: Sequence[str], one_row_per_entity: bool, strategy: str | None, file: Path
) -> list[str]:
    """The added columns, or an error when the input already has one: its values would be lost.

    >>> check_clash(["id", "score"], True, None, Path("in.csv"))
    Traceback (most recent call last):
    clearpipe.errors.InputError: in.csv: the input already has columns ['score'], which --one-row-per-entity adds; rename them before predicting
    """
    added = entity_columns(one_row_per_entity, strategy)
    clash = [name for name in added if name in found]
    if clash:
        adds = "--one-row-per-entity adds" if one_row_per_entity else "predict adds for a NER model"
        raise InputError(
            f"{file}: the input already has columns {clash}, which {adds}; rename them before predicting"
        )
    return added


def entity_rows(
    finder: EntityFinder, chunk: Chunk, texts: list[str], mode: str, strategy: str | None
) -> list[Row]:
    """The output rows of `chunk`, whose texts are `texts`: all of them run through the
    classifier's stages in one call (the engine batches them), aggregated by `strategy` (None:
    the classifier's default).

    >>> entity_rows(ner, Chunk([{"text": "Ada met Alan."}], 1, 14), ["Ada met Alan."], "column", None)  # doctest: +SKIP
    [{'text': 'Ada met Alan.', 'entities': '[{"entity_group": "PER", ...}]'}]
    """
    found = finder(texts, aggregation_strategy=strategy) if texts else []
    fields = TOKEN_FIELDS if strategy == "none" else ENTITY_FIELDS
    if mode == COLUMN:
        return [
            {**row, "entities": json.dumps(ents, ensure_ascii=False)}
            for row, ents in zip(chunk.rows, found, strict=True)
        ]
    return [
        {**row, "row": chunk.first_row + i, **{field: entity[field] for field in fields}}
        for i, (row, ents) in enumerate(zip(chunk.rows, found, strict=True))
        for entity in ents
    ]
