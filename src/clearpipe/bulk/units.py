"""Units of work: runs of consecutive rows of one input file, cut by the driver, read by workers.

The driver reads every text file once with the reader `clearpipe predict` uses locally
(`tables.read.read_chunks`), so a file that cannot be decoded or parsed fails there, with the
local path's message, before any worker starts; each chunk of `chunk_rows` rows becomes a unit
that remembers its byte range. A worker reads back just that range with the same reader and
gets the same rows, numbered the same way. A Parquet file is cut by row offsets from its
metadata alone. A unit is named by (file, index), and so is its part: a retried unit writes the
same part again, never a second one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clearpipe.bulk.files import InputFile, filesystem, local_copy, named_as
from clearpipe.errors import InputError
from clearpipe.tables.read import Chunk, Row, open_parquet, read_chunks

Check = Callable[[Chunk, InputFile], None]


@dataclass(frozen=True)
class Unit:
    """Rows [first_row, first_row + rows) of input file number `file` (1-based, as locally).

    `start`/`stop` are byte offsets in a text file and row offsets in a Parquet file; `head` is
    the length of a CSV/TSV file's header line, read before a range that does not start the file.
    """

    file: int
    index: int
    first_row: int
    rows: int
    start: int
    stop: int
    head: int = 0

    def part(self, suffix: str) -> str:
        """The part file this unit writes: fixed by the unit, so sorting names gives input order."""
        return f"part-{self.file:05d}-{self.index:06d}.{suffix}"


@dataclass(frozen=True)
class Reading:
    """How the input files are read, as locally: `chunk_rows` per unit, `encoding`, and whether a
    CSV/TSV file starts with a `header`."""

    chunk_rows: int
    encoding: str = "utf-8"
    header: bool = True


def cut_units(files: Sequence[InputFile], reading: Reading, texts: list[str], check: Check) -> list[Unit]:
    """Cut every file into units of at most `reading.chunk_rows` rows, calling `check` on each
    chunk read. `texts` names the text (and pair) columns: a Parquet file is read whole only when
    they are not all non-null strings, to find the row the local path would name.

    >>> cut_units([InputFile("/d/a.csv", "a.csv", 90, 0, "csv")], Reading(2), ["text"], check)  # doctest: +SKIP
    [Unit(file=0, index=0, first_row=1, rows=2, start=0, stop=41, head=10), ...]
    """
    units: list[Unit] = []
    for number, file in enumerate(files):
        if file.format == "parquet":
            units += _cut_parquet(file, number, reading, texts, check)
        else:
            units += _cut_text(file, number, reading, check)
    return units


def read_unit(file: InputFile, unit: Unit, reading: Reading) -> tuple[Chunk, Any]:
    """The rows of `unit` as the local reader gives them, and the file's Arrow schema (Parquet; else None).

    >>> chunk, schema = read_unit(files[0], units[3], "utf-8")  # doctest: +SKIP
    """
    fs, path = filesystem(file.uri)
    schema = None
    with fs.open_input_file(path) as source:
        if file.format == "parquet":
            parquet = open_parquet(file.name, source)
            rows, schema = _parquet_slice(parquet, unit), parquet.schema_arrow
        else:
            rows = _text_slice(file, unit, source, reading)
    if len(rows) != unit.rows:
        raise InputError(
            f"{file.name} changed while it was being classified ({len(rows)} rows where {unit.rows} were "
            f"counted from row {unit.first_row}); rerun without --resume"
        )
    return Chunk(rows, unit.first_row, unit.stop), schema


def _cut_text(file: InputFile, number: int, reading: Reading, check: Check) -> list[Unit]:
    units = []
    with local_copy(file) as path, named_as(path, file.name):
        head = _first_line_length(path) if reading.header and file.format in ("csv", "tsv") else 0
        start = 0
        for index, chunk in enumerate(
            read_chunks(path, reading.chunk_rows, reading.encoding, reading.header)
        ):
            check(chunk, file)
            units.append(Unit(number, index, chunk.first_row, len(chunk.rows), start, chunk.bytes_read, head))
            start = chunk.bytes_read  # the reader's position after the chunk's last row
    return units


def _first_line_length(path: Path) -> int:
    with open(path, "rb") as raw:
        return len(raw.readline())


def _text_slice(file: InputFile, unit: Unit, source: Any, reading: Reading) -> list[Row]:
    # The reader treats a file's first line specially (a CSV header; a byte-order mark dropped),
    # so a range from the middle of a file gets a stand-in first line: the header, or a blank
    # line (skipped in JSONL, one empty row to drop in .txt). A headerless CSV/TSV needs none.
    prefix, skip = b"", 0
    if unit.start > 0 and unit.head:
        prefix = source.read_at(unit.head, 0)
    elif unit.start > 0 and file.format in ("jsonl", "txt"):
        prefix, skip = b"\n", int(file.format == "txt")
    data = prefix + source.read_at(unit.stop - unit.start, unit.start)
    with tempfile.TemporaryDirectory(prefix="clearpipe-unit-") as tmp:
        copy = Path(tmp) / f"unit.{file.format}"
        copy.write_bytes(data)
        with named_as(copy, file.name):
            chunks = read_chunks(copy, unit.rows + skip, reading.encoding, reading.header)
            rows = [row for chunk in chunks for row in chunk.rows]
    return rows[skip:]


def _cut_parquet(
    file: InputFile, number: int, reading: Reading, texts: list[str], check: Check
) -> list[Unit]:
    fs, path = filesystem(file.uri)
    with fs.open_input_file(path) as source:
        parquet = open_parquet(file.name, source)
        clean = all(_clean_strings(parquet, column) for column in texts)
        total = parquet.metadata.num_rows
    if not clean:  # read it the local way, so the error names the row the local path names
        with local_copy(file) as copy, named_as(copy, file.name):
            for chunk in read_chunks(copy, reading.chunk_rows, reading.encoding):
                check(chunk, file)
    chunk_rows = reading.chunk_rows
    return [
        Unit(number, index, start + 1, min(chunk_rows, total - start), start, min(start + chunk_rows, total))
        for index, start in enumerate(range(0, total, chunk_rows))
    ]


def _clean_strings(parquet: Any, column: str) -> bool:
    """True when `column` holds strings and no nulls, judged from the metadata where it can be."""
    import pyarrow as pa

    kind = parquet.schema_arrow.field(column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return False
    meta = parquet.metadata
    for group in range(meta.num_row_groups):
        chunks = [meta.row_group(group).column(i) for i in range(meta.num_columns)]
        stats = next(c.statistics for c in chunks if c.path_in_schema == column)
        if stats is None or not stats.has_null_count:
            return parquet.read(columns=[column]).column(column).null_count == 0
        if stats.null_count:
            return False
    return True


def _parquet_slice(parquet: Any, unit: Unit) -> list[Row]:
    groups, offset, first = [], 0, 0
    for group in range(parquet.metadata.num_row_groups):
        size = parquet.metadata.row_group(group).num_rows
        if first < unit.stop and first + size > unit.start:
            offset = first if not groups else offset
            groups.append(group)
        first += size
    return parquet.read_row_groups(groups).slice(unit.start - offset, unit.rows).to_pylist()
