"""Write predicted rows as parts, then assemble the parts into the output table.

Each chunk of results becomes one part file, written under a temporary name, flushed to disk
(fsync) and renamed into place, and the folder is synced too: after a power loss a part is
there whole or not at all, never a short or empty file under its own name. `write_part` returns
the part's sha256, so a caller can record it and check the part later. Assembly streams the
parts into a temporary file, checking each part against its digest, and renames it over the
output at the end: the output is either absent, the previous file, or complete.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clearpipe.errors import ClearpipeError
from clearpipe.tables.read import Row

PART_SUFFIX = {"csv": "csv", "tsv": "tsv", "jsonl": "jsonl", "json": "jsonl", "parquet": "parquet"}


class PartChanged(ClearpipeError):
    """A part no longer holds what was written to it (its sha256 differs from the recorded one)."""


def write_part(
    rows: Sequence[Row], columns: Sequence[str], fmt: str, path: Path, header: bool = False
) -> str:
    """Write `rows` as one complete, durable part file at `path`; return its sha256 (hex).

    Atomically: a temp file, flushed and fsynced, renamed into place, then the folder fsynced.
    `header=True` starts a CSV/TSV part with the column names, for parts that are read on their
    own (`clearpipe.bulk.ray` publishes a folder of them) rather than assembled.

    >>> write_part([{"text": "good", "label": "positive"}], ["text", "label"], "jsonl", Path("p.jsonl"))  # doctest: +SKIP
    '5b0e...'
    """
    tmp = path.with_name(path.name + ".tmp")
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(arrow_table(rows, columns), tmp)
    else:
        with open(tmp, "w", encoding="utf-8", newline="") as out:
            if header:
                _write_header(out, columns, fmt)
            _write_text_rows(out, rows, columns, fmt)
    digest = durable(tmp)
    os.replace(tmp, path)
    sync_folder(path.parent)
    return digest


def arrow_table(rows: Sequence[Row], columns: Sequence[str]) -> Any:
    """`rows` as an Arrow table; with no rows, still with `columns` (typed null, which the parts'
    schemas unify with), as a chunk without entities writes with one row per entity.

    >>> arrow_table([], ["text", "row"]).column_names
    ['text', 'row']
    """
    import pyarrow as pa

    if not rows:
        return pa.table({name: pa.array([], pa.null()) for name in columns})
    return pa.Table.from_pylist(list(rows))


def durable(path: Path) -> str:
    """Flush `path` to disk (fsync) and return its sha256, read back as it now stands."""
    sha = hashlib.sha256()
    with open(path, "rb+") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
        os.fsync(f.fileno())
    return sha.hexdigest()


def sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable. Systems that cannot open a folder (Windows) skip it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some filesystems refuse fsync on a folder; the rename is all they offer
        pass
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably (temp file, fsync, rename, fsync folder).

    >>> write_durably(Path("parts/manifest.json"), b"{}")  # doctest: +SKIP
    """
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    durable(tmp)
    os.replace(tmp, path)
    sync_folder(path.parent)


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


def assemble(
    parts: Sequence[Path],
    columns: Sequence[str],
    fmt: str,
    output: Path,
    digests: Sequence[str] | None = None,
) -> None:
    """Concatenate the parts into `output` through a temporary file renamed into place.

    With `digests` (each part's sha256, as `write_part` returned it), every part is checked as
    it is read, and a part that changed raises `PartChanged`: the output is then left as it was,
    and no temporary file stays behind.

    >>> assemble([Path("p/part-000000.csv")], ["text", "label"], "csv", Path("out.csv"), ["5b0e..."])  # doctest: +SKIP
    """
    tmp = output.with_name(f".{output.name}.clearpipe-tmp")
    sources = [_Part(part, None if digests is None else digests[i]) for i, part in enumerate(parts)]
    try:
        if fmt == "parquet":
            _assemble_parquet(sources, tmp)
        else:
            with open(tmp, "wb") as out:
                out.write(_header_bytes(columns, fmt))
                if fmt == "json":
                    _assemble_json(sources, out)
                else:
                    for part in sources:
                        out.write(part.read())
        durable(tmp)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, output)
    sync_folder(output.parent)


class _Part:
    """A part read whole and checked against its digest: bytes, never decoded text, so a damaged
    part is reported as damaged rather than as an encoding error."""

    def __init__(self, path: Path, digest: str | None) -> None:
        self.path = path
        self.digest = digest

    def read(self) -> bytes:
        data = self.path.read_bytes()
        if self.digest is not None and hashlib.sha256(data).hexdigest() != self.digest:
            raise PartChanged(
                f"{self.path} changed while the output was being assembled; nothing was written: "
                "rerun with --resume to redo it"
            )
        return data


def _header_bytes(columns: Sequence[str], fmt: str) -> bytes:
    text = io.StringIO(newline="")
    _write_header(text, columns, fmt)
    return text.getvalue().encode("utf-8")


def _assemble_json(parts: Sequence[_Part], out: Any) -> None:
    out.write(b"[")
    first = True
    for part in parts:
        for line in part.read().splitlines():
            out.write((b"\n" if first else b",\n") + line)
            first = False
    out.write(b"\n]\n")


def _assemble_parquet(parts: Sequence[_Part], tmp: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Parts can disagree on types (a column that is all-null in one chunk), so unify first.
    tables = (pq.read_table(pa.BufferReader(part.read())) for part in parts)
    schema = pa.unify_schemas([pq.read_schema(p.path) for p in parts]) if parts else pa.schema([])
    with pq.ParquetWriter(tmp, schema) as writer:
        for table in tables:
            writer.write_table(table.cast(schema))
