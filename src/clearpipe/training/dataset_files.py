"""Read a training or evaluation table through `datasets`: `.csv`, `.tsv` (tab-separated, no
quoting), `.json` (a list of records), `.jsonl`, `.parquet`, or a `save_to_disk` folder.

Malformed files raise `InputError` naming the file and, where known, the row.
"""

from __future__ import annotations

import csv
from pathlib import Path

from clearpipe.errors import InputError, where
from clearpipe.tables.read import decoded_lines, numbered

SUFFIXES = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}


def read_table(path: str | Path, header: bool = True, encoding: str = "utf-8"):
    """Read a data file or `save_to_disk` folder into a `datasets.Dataset`, or raise `InputError`.

    `header=False` reads a CSV/TSV file whose first line is already data, naming its columns by
    number ("1" for the first, `clearpipe.tables.read.numbered`). `encoding` is that of a text
    file (CSV, TSV, JSON); one it does not decode is an `InputError` that suggests `--encoding`.

    >>> read_table("reviews.csv").column_names  # doctest: +SKIP
    ['review', 'label']
    """
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    path = Path(path)
    if path.is_dir():
        return _read_folder(path)
    if not path.is_file():
        raise InputError(f"no such data file: {path}")
    builder = SUFFIXES.get(path.suffix.lower())
    if builder is None:
        raise InputError(
            f"{path}: unknown data format {path.suffix!r}; use .csv, .tsv, .json, .jsonl, .parquet "
            "or a datasets save_to_disk folder"
        )
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    options: dict = {} if builder == "parquet" else {"encoding": encoding}
    if builder == "csv":
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        width = _check_rows(path, delimiter, quoting, header, encoding)
        options |= {"delimiter": delimiter, "quoting": quoting, "keep_default_na": False}
        if not header:
            options |= {"header": None, "column_names": numbered(width)}
    elif builder == "json":
        # pyarrow reads JSON bytes unchecked; an undecodable one would surface later, unnamed.
        for _ in decoded_lines(path, encoding):
            pass
    try:
        table = datasets.load_dataset(builder, data_files=str(path), split="train", **options)
    except Exception as exc:  # datasets wraps parser errors in its own types
        raise _unreadable(path, exc, encoding) from None
    if len(table) == 0:
        raise InputError(f"{path}: the file has no data rows")
    return table


def _read_folder(path: Path):
    import datasets

    try:
        table = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise InputError(f"{path} is a folder but not one written by datasets' save_to_disk") from None
    if isinstance(table, datasets.DatasetDict):
        if "train" not in table:
            raise InputError(f"{path}: a DatasetDict without a 'train' split ({', '.join(table)})")
        table = table["train"]
    return table


def _check_rows(
    path: Path, delimiter: str, quoting: int, header: bool = True, encoding: str = "utf-8"
) -> int:
    """The file's column count, after checking every row has it (pandas reports ragged rows by
    line number, or silently pads short ones) and that every line decodes (naming the line)."""
    lines = (line for _, line, _ in decoded_lines(path, encoding))
    reader = csv.reader(lines, delimiter=delimiter, quoting=quoting)
    first = next(reader, None)
    if not first:
        raise InputError(f"{path}: the file is empty")
    rows = 0 if header else 1
    what = (
        f"the header has {len(first)} ({', '.join(first)})" if header else f"the first row has {len(first)}"
    )
    for row_number, row in enumerate(reader, start=1 if header else 2):
        if row and len(row) != len(first):
            raise InputError(f"{where(path, row=row_number)}: has {len(row)} fields but {what}")
        rows += bool(row)
    if rows == 0:
        raise InputError(f"{path}: the file has no data rows")
    return len(first)


def _unreadable(path: Path, exc: BaseException, encoding: str) -> InputError:
    undecodable = next((e for e in _causes(exc) if isinstance(e, UnicodeDecodeError)), None)
    if undecodable is not None:
        return InputError(
            f"{path}: cannot decode as {encoding} ({undecodable.reason} at byte {undecodable.start}); "
            "pass --encoding to choose another (e.g. latin-1, cp1252)"
        )
    return InputError(f"{path}: cannot read as {path.suffix[1:]}: {_root_cause(exc)}")


def _causes(exc: BaseException | None):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
