"""Write predicted rows as parts, then assemble the parts into the output table.

Each chunk of results becomes one part file, written under a temporary name and renamed into
place, so an interrupted run leaves only complete parts behind and `--resume` can count them.
Assembly streams the parts into a temporary file that is renamed over the output at the end:
the output is either absent, the previous file, or complete.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clearpipe.tables.read import Row

PART_SUFFIX = {"csv": "csv", "tsv": "tsv", "jsonl": "jsonl", "json": "jsonl", "parquet": "parquet"}


def write_part(
    rows: Sequence[Row], columns: Sequence[str], fmt: str, path: Path, header: bool = False
) -> None:
    """Write `rows` as one complete part file at `path` (atomically: temp file, then rename).

    `header=True` starts a CSV/TSV part with the column names, for parts that are read on their
    own (`clearpipe.bulk.ray` publishes a folder of them) rather than assembled.
    """
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(list(rows)), tmp)
    else:
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            if header:
                _write_header(out, columns, fmt)
            _write_text_rows(out, rows, columns, fmt)
    os.replace(tmp, path)


def _write_header(out: Any, columns: Sequence[str], fmt: str) -> None:
    if fmt == "csv":
        csv.writer(out, lineterminator="\n").writerow(columns)
    elif fmt == "tsv":
        out.write(_tsv_line([_cell(c, fmt) for c in columns]))


def _write_text_rows(out: Any, rows: Sequence[Row], columns: Sequence[str], fmt: str) -> None:
    if fmt in ("jsonl", "json"):
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        return
    if fmt == "tsv":
        out.writelines(_tsv_line([_cell(row.get(c), fmt) for c in columns]) for row in rows)
        return
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow([_cell(row.get(c), fmt) for c in columns])


def _tsv_line(cells: Sequence[str]) -> str:
    return "\t".join(cells) + "\n"


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if fmt == "tsv":
        # Plain TSV has no quoting: escape the characters that would break the row.
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def assemble(parts: Sequence[Path], columns: Sequence[str], fmt: str, output: Path) -> None:
    """Concatenate the parts into `output` through a temporary file renamed into place."""
    tmp = output.with_name(f".{output.name}.clearpipe-tmp")
    if fmt == "parquet":
        _assemble_parquet(parts, tmp)
    else:
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            _write_header(out, columns, fmt)
            if fmt == "json":
                _assemble_json(parts, out)
            else:
                for part in parts:
                    with open(part, encoding="utf-8", newline="") as src:
                        shutil.copyfileobj(src, out)
    os.replace(tmp, output)


def _assemble_json(parts: Sequence[Path], out: Any) -> None:
    out.write("[")
    first = True
    for part in parts:
        with open(part, encoding="utf-8") as src:
            for line in src:
                out.write(("\n" if first else ",\n") + line.rstrip("\n"))
                first = False
    out.write("\n]\n")


def _assemble_parquet(parts: Sequence[Path], tmp: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Parts can disagree on types (a column that is all-null in one chunk), so unify first.
    schema = pa.unify_schemas([pq.read_schema(p) for p in parts]) if parts else pa.schema([])
    with pq.ParquetWriter(tmp, schema) as writer:
        for part in parts:
            writer.write_table(pq.read_table(part).cast(schema))
