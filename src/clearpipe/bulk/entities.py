"""`clearpipe predict` with a token classifier: every row's named entities into a new file.

Rows are read in chunks (`tables.read`), their texts run through the classifier's stages in one
call per chunk, and each chunk is written as a durable part (`tables.write`) assembled into the
output at the end, renamed into place. By default the input's rows come back with an `entities`
column, a JSON list of `{"entity_group", "score", "word", "start", "end"}`; with
`one_row_per_entity`, one row per entity (the row's own columns, then `row`, the input's 1-based
row number, and `entity_group`, `score`, `word`, `start`, `end`); a row without entities then
writes nothing.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from clearpipe.errors import InputError
from clearpipe.tables.columns import TEXT_NAMES, pick_column
from clearpipe.tables.read import Chunk, Row, read_chunks, read_columns, table_format
from clearpipe.tables.write import PART_SUFFIX, assemble, write_part

ENTITY_FIELDS = ("entity_group", "score", "word", "start", "end")


class EntityFinder(Protocol):
    """What this module needs of a token classifier (`clearpipe.entities.TokenClassifier`)."""

    def __call__(self, inputs: object) -> list[dict[str, object]] | list[list[dict[str, object]]]: ...


@dataclass(frozen=True)
class EntityJob:
    """One `predict` run of a token classifier over a table."""

    input: Path
    output: Path
    text_column: str | None = None
    one_row_per_entity: bool = False
    chunk_rows: int = 4096
    encoding: str = "utf-8"
    header: bool = True


def predict_entities_file(finder: EntityFinder, job: EntityJob) -> int:
    """Write every row's entities (see the module docstring); return the rows written.

    >>> predict_entities_file(clearpipe.load("ner-model"), EntityJob(Path("news.csv"), Path("out.csv")))  # doctest: +SKIP
    1200
    """
    fmt = table_format(job.output, role="output")
    if fmt == "txt":
        raise InputError(
            f"{job.output}: .txt cannot hold entities; write .csv, .tsv, .jsonl, .json or .parquet"
        )
    found = read_columns(job.input, job.encoding, job.header)
    text = pick_column(found, job.text_column, TEXT_NAMES, "text", "--text-column", job.input)
    added = entity_columns(job.one_row_per_entity)
    check_clash(found, added, job)  # before any part is written
    columns = [*found, *added]
    parts = job.output.with_name(job.output.name + ".entity-parts")
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True)
    written, paths, digests = 0, [], []
    try:
        for number, chunk in enumerate(read_chunks(job.input, job.chunk_rows, job.encoding, job.header)):
            rows = _chunk_rows(finder, chunk, text, job)
            path = parts / f"part-{number:06d}.{PART_SUFFIX[fmt]}"
            digests.append(write_part(rows, columns, fmt, path))
            paths.append(path)
            written += len(rows)
        assemble(paths, columns, fmt, job.output, digests)
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return written


def _chunk_rows(finder: EntityFinder, chunk: Chunk, column: str, job: EntityJob) -> list[Row]:
    texts = [_text(row, column, chunk.first_row + i, job.input) for i, row in enumerate(chunk.rows)]
    found = finder(texts) if texts else []
    if not job.one_row_per_entity:
        return [
            {**row, "entities": json.dumps(ents, ensure_ascii=False)}
            for row, ents in zip(chunk.rows, found, strict=True)
        ]
    return [
        {**row, "row": chunk.first_row + i, **{field: entity[field] for field in ENTITY_FIELDS}}
        for i, (row, ents) in enumerate(zip(chunk.rows, found, strict=True))
        for entity in ents
    ]


def _text(row: Row, column: str, number: int, file: Path) -> str:
    value = row.get(column)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(
            f'{file}, row {number}, column "{column}": expected text, got {type(value).__name__}'
        )
    return value


def check_clash(found: Sequence[str], added: Sequence[str], job: EntityJob) -> None:
    """Refuse an input that already has a column `predict` adds: its values would be overwritten.

    >>> job = EntityJob(Path("in.csv"), Path("o.csv"), one_row_per_entity=True)
    >>> check_clash(["id", "score"], entity_columns(True), job)
    Traceback (most recent call last):
    clearpipe.errors.InputError: in.csv: the input already has columns ['score'], which --one-row-per-entity adds; rename them before predicting
    """
    clash = [name for name in added if name in found]
    if clash:
        adds = "--one-row-per-entity adds" if job.one_row_per_entity else "predict adds for a NER model"
        raise InputError(
            f"{job.input}: the input already has columns {clash}, which {adds}; rename them before predicting"
        )


def entity_columns(one_row_per_entity: bool) -> Sequence[str]:
    """The columns `predict` adds: `entities`, or `row` and the entity's fields."""
    return ["row", *ENTITY_FIELDS] if one_row_per_entity else ["entities"]
