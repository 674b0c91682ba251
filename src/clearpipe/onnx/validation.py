"""Texts to validate a converted model on: a user's file, or a built-in sample of the model's kind.

A file may be plain text (one text per line), CSV, TSV (read without quoting, like the project's
datasets) or JSON Lines; in a table the text column is found like everywhere else in clearpipe
(`clearpipe.tables.columns`). The built-in samples are a few hundred sentiment phrases (SST-2 dev) and
news snippets (AG News) of `clearpipe.engine.samples`, picked by the model's label names.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from clearpipe.errors import InputError, where
from clearpipe.tables.columns import TEXT_NAMES, pick_column

MAX_ROWS = 5000


def read_texts(
    path: Path, text_column: str | None = None, limit: int = MAX_ROWS, encoding: str = "utf-8"
) -> list[str]:
    """Read up to `limit` texts from a .txt, .csv, .tsv or .jsonl file in `encoding`.

    >>> read_texts(Path("dev.tsv"))[:1]  # doctest: +SKIP
    ['a charming and often affecting journey']
    """
    if not path.is_file():
        raise InputError(f"no such validation file: {path}")
    try:
        texts = _read(path, text_column, limit, encoding)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: cannot decode as {encoding} ({exc.reason}); "
            "pass --encoding to choose another (e.g. latin-1, cp1252)"
        ) from None
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}; pass --encoding with a text encoding") from None
    texts = [t for t in texts if t.strip()]
    if not texts:
        raise InputError(f"{path} holds no texts to validate on")
    return texts


def _read(path: Path, text_column: str | None, limit: int, encoding: str) -> list[str]:
    suffix = path.suffix.lower()
    with path.open(encoding=encoding, newline="") as handle:
        if suffix in (".csv", ".tsv"):
            rows = csv.DictReader(handle, **_dialect(suffix))
            column = pick_column(
                rows.fieldnames or [], text_column, TEXT_NAMES, "text", "--text-column", path
            )
            return [row[column] or "" for _, row in zip(range(limit), rows, strict=False)]
        if suffix in (".jsonl", ".ndjson"):
            return _jsonl(handle, path, text_column, limit)
        return [line.rstrip("\r\n") for _, line in zip(range(limit), handle, strict=False)]


def _dialect(suffix: str) -> dict:
    return {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if suffix == ".tsv" else {}


def _jsonl(handle, path: Path, text_column: str | None, limit: int) -> list[str]:
    texts = []
    for number, line in zip(range(1, limit + 1), handle, strict=False):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where(path, row=number)}: not valid JSON ({exc.msg})") from None
        column = pick_column(list(record), text_column, TEXT_NAMES, "text", "--text-column", path)
        texts.append(str(record[column]))
    return texts
