"""Read and write tables in chunks: .txt, .csv, .tsv, .jsonl, .json and .parquet.

Reading streams a file chunk by chunk so that `clearpipe predict` works in bounded memory on
files larger than RAM (.json, a single array, is the exception: it is parsed whole). Every
row carries its 1-based number so that errors can say where they are. Text files are decoded
line by line, strictly, so an undecodable byte is reported with its line number; UTF-16 and
UTF-32 files are decoded as a stream, and lines may end in LF, CRLF or CR alone.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearpipe.errors import InputError, where

FORMATS = ("txt", "csv", "tsv", "jsonl", "json", "parquet")
Row = dict[str, Any]

csv.field_size_limit(sys.maxsize)  # a 1,000,000-character text is a valid cell


@dataclass(frozen=True)
class Chunk:
    """Consecutive rows of a table; `first_row` is the 1-based number of `rows[0]`."""

    rows: list[Row]
    first_row: int
    bytes_read: int


def table_format(path: Path, role: str = "input") -> str:
    """The format of `path` from its suffix, or an `InputError` listing the known ones.

    >>> table_format(Path("reviews.TSV"))
    'tsv'
    """
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "ndjson":
        return "jsonl"
    if suffix not in FORMATS:
        raise InputError(f"{path}: unknown {role} format {path.suffix!r}; use one of .{', .'.join(FORMATS)}")
    return suffix


def read_columns(path: Path, encoding: str = "utf-8", header: bool = True) -> list[str]:
    """The column names of a table: its header, its Parquet schema, or its first record's keys.

    `header=False` reads a CSV/TSV file whose first line is already data: its columns are
    named by number, "1" for the first.

    >>> read_columns(Path("reviews.csv"))  # doctest: +SKIP
    ['id', 'text']
    """
    fmt = table_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if fmt == "parquet":
        return list(open_parquet(path).schema_arrow.names)
    if fmt in ("csv", "tsv"):
        names = _csv_header(path, encoding)
        return names if header else numbered(len(names))
    first = next(read_chunks(path, chunk_rows=1, encoding=encoding), None)
    return list(first.rows[0]) if first else ["text"] if fmt == "txt" else []


def read_chunks(path: Path, chunk_rows: int, encoding: str = "utf-8", header: bool = True) -> Iterator[Chunk]:
    """Yield the rows of `path` in chunks of at most `chunk_rows` (`header`: as in `read_columns`).

    >>> next(read_chunks(Path("reviews.csv"), chunk_rows=1000)).rows[0]  # doctest: +SKIP
    {'id': '1', 'text': 'Great phone.'}
    """
    fmt = table_format(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    readers = {
        "txt": _txt_rows,
        "csv": _csv_rows,
        "tsv": _csv_rows,
        "jsonl": _jsonl_rows,
        "json": _json_rows,
        "parquet": _parquet_rows,
    }
    rows: list[Row] = []
    first = 1
    consumed = 0
    rows_of = readers[fmt] if header or fmt not in ("csv", "tsv") else _headerless_csv_rows
    for number, row, position in rows_of(path, encoding):
        if not rows:
            first = number
        rows.append(row)
        consumed = position
        if len(rows) == chunk_rows:
            yield Chunk(rows, first, consumed)
            rows = []
    if rows:
        yield Chunk(rows, first, consumed)


RowStream = Iterator[tuple[int, Row, int]]


def decoded_lines(path: Path, encoding: str) -> Iterator[tuple[int, str, int]]:
    """Yield each line of `path` as (1-based number, text with its line ending, byte position
    after it), decoded strictly: an undecodable byte or an unknown encoding is an `InputError`
    that suggests `--encoding`.

    >>> next(decoded_lines(Path("reviews.csv"), "utf-8"))  # doctest: +SKIP
    (1, 'id,text\\n', 8)
    """
    lines = _byte_lines(path, encoding) if _ascii_newlines(encoding) else _wide_lines(path, encoding)
    for number, text, position in lines:
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield number, text, position


def _ascii_newlines(encoding: str) -> bool:
    # An encoding that writes "\n" as the one byte 0x0a (UTF-8, Latin-1, cp1252, Shift JIS, ...)
    # can be cut into lines before decoding; UTF-16 and UTF-32 cannot.
    try:
        if not codecs.lookup(encoding)._is_text_encoding:
            raise LookupError(encoding)
        return codecs.getincrementalencoder(encoding)().encode("\n") == b"\n"
    except LookupError:
        raise InputError(f"unknown encoding {encoding!r}; pass --encoding with a text encoding") from None


def _byte_lines(path: Path, encoding: str) -> Iterator[tuple[int, str, int]]:
    # Decoding each line on its own (rather than through a text stream) is what lets an
    # encoding error name its line.
    position = 0
    with open(path, "rb") as raw:
        for number, line in enumerate(_raw_lines(raw), start=1):
            position += len(line)
            try:
                text = line.decode(encoding)
            except UnicodeDecodeError as exc:
                bad = line[exc.start : exc.start + 1]
                raise InputError(
                    f"{path}, line {number}: cannot decode byte {bad!r} as {encoding}; {_hint(line, number)}"
                ) from None
            yield number, text, position


def _raw_lines(raw: Any) -> Iterator[bytes]:
    # Lines end in LF (CRLF included), or in CR alone in files saved by classic Mac OS
    # software (told by a start with CRs and no LF): cut at LF, such a file would be one row.
    head = raw.read(1 << 16)
    raw.seek(0)
    if b"\n" in head or b"\r" not in head:
        yield from raw
        return
    pending = b""
    for block in iter(lambda: raw.read(1 << 20), b""):
        *lines, pending = (pending + block).split(b"\r")
        yield from (line + b"\r" for line in lines)
    if pending:
        yield pending


def _wide_lines(path: Path, encoding: str) -> Iterator[tuple[int, str, int]]:
    # UTF-16/32 text is decoded as a stream and cut at "\n" afterwards; re-encoding a line
    # gives its length in bytes (the byte-order mark included, once, as the file has it).
    decoder = codecs.getincrementaldecoder(encoding)()
    encoder = codecs.getincrementalencoder(encoding)()
    number, position, pending = 0, 0, ""
    with open(path, "rb") as raw:
        while True:
            block = raw.read(1 << 20)
            try:
                text = pending + decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"{path}, after line {number}: cannot decode {exc.object[exc.start : exc.end]!r} "
                    f"as {encoding} ({exc.reason}); pass --encoding to choose another"
                ) from None
            *lines, pending = text.split("\n")
            complete = [line + "\n" for line in lines]
            if not block and pending:
                complete.append(pending)  # the last line, without a line ending
            for line in complete:
                number += 1
                position += len(encoder.encode(line))
                yield number, line, position
            if not block:
                return


def _hint(line: bytes, number: int) -> str:
    if number == 1 and line[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return "the file starts with a UTF-16 byte-order mark: pass --encoding utf-16"
    return "pass --encoding to choose another (e.g. latin-1, cp1252)"


def _txt_rows(path: Path, encoding: str) -> RowStream:
    for number, line, position in decoded_lines(path, encoding):
        yield number, {"text": line.rstrip("\r\n")}, position


def _csv_header(path: Path, encoding: str) -> list[str]:
    for _, line, _ in decoded_lines(path, encoding):
        try:
            return next(_csv_reader([line], path))
        except csv.Error as exc:
            raise InputError(f"{path}, line 1: malformed {path.suffix[1:].upper()}: {exc}") from None
    return []


def _csv_reader(lines: Any, path: Path) -> Any:
    if path.suffix.lower() == ".tsv":
        # TSV files (GLUE, AG News) carry raw quotes inside texts: no CSV quoting.
        return csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    return csv.reader(lines)


def numbered(count: int) -> list[str]:
    """Column names for a file without a header row: "1", "2", ... (1-based, as people count).

    >>> numbered(2)
    ['1', '2']
    """
    return [str(i) for i in range(1, count + 1)]


def _headerless_csv_rows(path: Path, encoding: str) -> RowStream:
    return _csv_rows(path, encoding, header=False)


def _csv_rows(path: Path, encoding: str, header: bool = True) -> RowStream:
    position = 0

    def tracked() -> Iterator[str]:
        nonlocal position
        for _, line, pos in decoded_lines(path, encoding):
            position = pos
            yield line

    reader = _csv_reader(tracked(), path)
    try:
        first = next(reader, None)
        if first is None:
            return
        names = first if header else numbered(len(first))
        _check_header(names, path)
        rows = reader if header else itertools.chain([first], reader)
        for number, cells in enumerate(rows, start=1):
            if not cells:
                continue  # a blank line, typically the last one
            if len(cells) != len(names):
                what = "the header has" if header else "the first row has"
                raise InputError(
                    f"{where(path, row=number)} (line {reader.line_num}): has {len(cells)} fields, "
                    f"{what} {len(names)}"
                )
            yield number, dict(zip(names, cells, strict=True)), position
    except csv.Error as exc:
        raise InputError(
            f"{path}, line {reader.line_num}: malformed {path.suffix[1:].upper()}: {exc}"
        ) from None


def _check_header(header: list[str], path: Path) -> None:
    seen = set()
    for name in header:
        if name in seen:
            raise InputError(f'{path}: column "{name}" appears twice in the header')
        seen.add(name)


def _jsonl_rows(path: Path, encoding: str) -> RowStream:
    row = 0
    for number, line, position in decoded_lines(path, encoding):
        if not line.strip():
            continue
        row += 1
        yield row, _record(_parse_json(line, path, number), path, row), position


def _json_rows(path: Path, encoding: str) -> RowStream:
    _ascii_newlines(encoding)  # an unknown encoding is named as such
    try:
        text = path.read_bytes().decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: cannot decode as {encoding} at byte {exc.start}; pass --encoding"
        ) from None
    value = _parse_json(text, path)
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        value = value["data"]
    if not isinstance(value, list):
        raise InputError(f'{path}: expected a JSON array of records (or {{"data": [...]}})')
    size = path.stat().st_size
    for row, item in enumerate(value, start=1):
        yield row, _record(item, path, row), size


def _parse_json(text: str, path: Path, line: int | None = None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}, line {line or exc.lineno}: invalid JSON: {exc.msg}") from None
    except RecursionError:
        # Python's parser recurses once per level: thousands of nested brackets exhaust the stack.
        raise InputError(
            f"{path}{'' if line is None else f', line {line}'}: JSON nested too deeply to read; "
            "a table's records are objects of plain values"
        ) from None


def _record(value: Any, path: Path, row: int) -> Row:
    if isinstance(value, str):
        return {"text": value}
    if not isinstance(value, dict):
        raise InputError(f"{where(path, row=row)}: expected a JSON object, got {type(value).__name__}")
    return value


def open_parquet(path: Path | str, source: Any = None) -> Any:
    """A `pyarrow.parquet.ParquetFile` of `path` (read from `source`, an open file, when given),
    or an `InputError` naming the file when it is not Parquet.

    >>> open_parquet(Path("reviews.parquet")).metadata.num_rows  # doctest: +SKIP
    1200
    """
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path if source is None else source)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise InputError(f"{path}: not a readable Parquet file: {exc}") from None


def _parquet_rows(path: Path, encoding: str) -> RowStream:
    parquet = open_parquet(path)
    total_rows = max(parquet.metadata.num_rows, 1)
    size = path.stat().st_size
    row = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            row += 1
            yield row, record, size * row // total_rows
