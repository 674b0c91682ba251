"""Exactly once: parts staged per run, published with a manifest and a `_SUCCESS` marker.

Workers write each part under `OUTPUT/_staging/<run id>/`, named by its input unit and written
atomically (a temporary name renamed into place, or one object upload), so a task that Ray
retries rewrites the same part and never adds a second one. The driver publishes only when every
unit's part is there and the parts hold exactly the input's rows: it moves them into `OUTPUT`,
writes `_manifest.json` (parts, row counts, input fingerprint, model, options) and writes
`_SUCCESS` last (the Hadoop committer convention). Every bookkeeping name starts with `_`, so
readers that skip such names (Spark, pyarrow and pandas datasets, Ray) see the parts alone and
never staged ones; a reader that waits for `_SUCCESS`, or reads the parts `_manifest.json`
lists, never sees a partial or duplicated result. On `--resume`, a staged part that cannot be
read, or holds other than its unit's rows (cut short by a crash, say), is redone.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearpipe.bulk.files import filesystem, is_local
from clearpipe.errors import InputError
from clearpipe.tables.read import Row
from clearpipe.tables.write import arrow_table, durable, sync_folder, write_part

STAGING = "_staging"
MANIFEST = "_manifest.json"
OLD_MANIFEST = "manifest.json"  # what runs before the leading `_` wrote; still read on --resume
SUCCESS = "_SUCCESS"
RUN = "run.json"  # in a run's staging folder: what it is, for --resume


@dataclass(frozen=True)
class Staged:
    """What the output folder holds for a run: nothing yet, an interrupted run, or a finished one."""

    record: dict[str, Any] | None = None  # the interrupted run's run.json
    finished: set[str] = field(default_factory=set)  # its parts already written
    manifest: dict[str, Any] | None = None  # set when this very run is already published


@dataclass(frozen=True)
class Output:
    """The output folder of a run: `uri` as given, its filesystem and path."""

    uri: str
    fs: Any
    path: str

    @classmethod
    def at(cls, uri: str) -> Output:
        fs, path = filesystem(uri)
        return cls(uri, fs, path.rstrip("/"))

    def staging(self, run_id: str) -> str:
        return f"{self.path}/{STAGING}/{run_id}"

    def staging_uri(self, run_id: str) -> str:
        """The staging folder as workers open it (a path, or a URI for remote storage)."""
        prefix = "" if is_local(self.fs) else self.uri.split("://", 1)[0] + "://"
        return prefix + self.staging(run_id)


def inspect(out: Output, run_id: str, identity: dict[str, Any], resume: bool) -> Staged:
    """Check that `out` can take this run, and return what an interrupted run left there.

    Refuses (with the local path's wording) to mix runs: a finished run or other files in the
    folder, an interrupted run without `--resume`, or `--resume` of a run with other inputs or options.
    """
    import pyarrow.fs as pafs

    if out.fs.get_file_info(out.path).type == pafs.FileType.File:
        raise InputError(f"{out.uri} is a file; --engine ray writes a folder of parts")
    done = _published_manifest(out) if exists(out.fs, f"{out.path}/{SUCCESS}") else None
    if done is not None:
        if resume and done.get("run_id") == run_id:
            return Staged(manifest=done)
        raise InputError(
            f"{out.uri} holds a finished run (see its {MANIFEST}); delete it or choose another folder"
        )
    runs = _children(out.fs, f"{out.path}/{STAGING}", dirs=True)
    if runs and not resume:
        raise InputError(
            f"{out.uri} holds an interrupted run: pass --resume to continue it, or delete the folder"
        )
    if resume and run_id in runs:
        record = _read_json(out.fs, f"{out.staging(run_id)}/{RUN}")
        finished = set(_children(out.fs, out.staging(run_id))) | set(_children(out.fs, out.path))
        return Staged(record=record, finished={n for n in finished if n.startswith("part-")})
    if runs:
        recorded = _read_json(out.fs, f"{out.path}/{STAGING}/{runs[0]}/{RUN}") or {}
        differences = [k for k in identity if recorded.get("identity", {}).get(k) != identity[k]]
        raise InputError(
            f"cannot resume {out.uri}: this run differs from the interrupted one in "
            f"{', '.join(differences) or 'its run id'}; rerun with the same input, options and model, "
            "or delete the folder to start over"
        )
    if _children(out.fs, out.path):
        raise InputError(f"{out.uri} is not empty; choose a new or empty folder for the parts")
    return Staged()


def begin(out: Output, run_id: str, record: dict[str, Any]) -> None:
    """Create the run's staging folder and record the run in it (for `--resume`)."""
    out.fs.create_dir(out.staging(run_id), recursive=True)
    _write_bytes(out.fs, f"{out.staging(run_id)}/{RUN}", json.dumps(record, indent=1).encode())


def put_part(
    staging: str, name: str, rows: Sequence[Row], columns: Sequence[str], fmt: str, types: Any = None
) -> None:
    """Write one part into a staging folder, all of it or nothing (called on workers).

    `types` (an Arrow schema, for a Parquet input) keeps the input's column types in a Parquet
    part, so a part whose rows are all null in a column agrees with the others.

    >>> put_part("/out/_staging/ab12", "part-00000-000003.parquet", rows, plan.columns, "parquet")  # doctest: +SKIP
    """
    fs, folder = filesystem(staging)
    if is_local(fs):
        # A name unique to this attempt: a retried task never writes into another attempt's file.
        tmp = Path(folder) / f".{uuid.uuid4().hex}.{name}"
        _write_part(rows, columns, fmt, tmp, types)
        os.replace(tmp, Path(folder) / name)
        sync_folder(Path(folder))
        return
    import pyarrow.fs as pafs

    with tempfile.TemporaryDirectory(prefix="clearpipe-part-") as tmp:
        local = Path(tmp) / name
        _write_part(rows, columns, fmt, local, types)
        # One upload: an object store shows the whole object or none of it.
        pafs.copy_files(str(local), f"{folder}/{name}", pafs.LocalFileSystem(), fs)


def count_rows(out: Output, folder: str, name: str, fmt: str) -> int | None:
    """The rows a part holds, read back from the part itself (not from what a worker said);
    None when it is not a whole part (unreadable, or a text part that stops mid-row).

    >>> count_rows(out, out.staging("ab12"), "part-00000-000003.csv", "csv")  # doctest: +SKIP
    4096
    """
    try:
        return _count_rows(out, f"{folder}/{name}", fmt)
    except (ValueError, OSError, csv.Error):  # ArrowInvalid and UnicodeDecodeError are ValueErrors
        return None


def _count_rows(out: Output, path: str, fmt: str) -> int | None:
    with out.fs.open_input_file(path) as source:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(source).metadata.num_rows  # a part cut short has no footer
        data = source.read()
    if not data.endswith(b"\n"):  # every writer ends a part with a newline
        return None
    if fmt == "jsonl":
        return data.count(b"\n")  # one record per line: JSON escapes newlines inside values
    if fmt == "tsv":
        return data.count(b"\n") - 1  # TSV cells escape their newlines too; minus the header
    # strict: a quoted cell cut short by the end of the file is an error, not a row
    return sum(1 for _ in csv.reader(io.StringIO(data.decode("utf-8"), newline=""), strict=True)) - 1


def publish(out: Output, run_id: str, manifest: dict[str, Any]) -> None:
    """Move the run's parts into the output folder, then write the manifest, then `_SUCCESS`."""
    staging = out.staging(run_id)
    for part in manifest["parts"]:
        if exists(out.fs, f"{staging}/{part['file']}"):  # moved already by an interrupted publish
            out.fs.move(f"{staging}/{part['file']}", f"{out.path}/{part['file']}")
    _write_bytes(out.fs, f"{out.path}/{MANIFEST}", json.dumps(manifest, indent=1).encode())
    _write_bytes(out.fs, f"{out.path}/{SUCCESS}", b"")
    out.fs.delete_dir(staging)
    _remove_if_empty(out.fs, f"{out.path}/{STAGING}")


def discard(out: Output, run_id: str) -> None:
    """Remove a run's staging folder: bad input fails the same way every time, so it cannot resume."""
    if exists(out.fs, out.staging(run_id)):
        out.fs.delete_dir(out.staging(run_id))
    _remove_if_empty(out.fs, f"{out.path}/{STAGING}")
    _remove_if_empty(out.fs, out.path)


def _remove_if_empty(fs: Any, folder: str) -> None:
    import pyarrow.fs as pafs

    if exists(fs, folder) and not fs.get_file_info(pafs.FileSelector(folder)):
        fs.delete_dir(folder)


def _write_part(rows: Sequence[Row], columns: Sequence[str], fmt: str, path: Path, types: Any) -> None:
    if fmt != "parquet":
        write_part(rows, columns, fmt, path, header=True)  # the local path's writer, cell for cell
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = arrow_table(rows, columns)
    if types is not None:
        fields = [types.field(n) if n in types.names else table.schema.field(n) for n in table.column_names]
        table = table.cast(pa.schema(fields))
    pq.write_table(table, path)
    durable(path)  # on disk before it is renamed into place: a crash leaves it whole or absent


def _write_bytes(fs: Any, path: str, data: bytes) -> None:
    if is_local(fs):
        tmp = Path(path).with_name(f".{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        durable(tmp)
        os.replace(tmp, path)
        sync_folder(Path(path).parent)
        return
    with fs.open_output_stream(path) as stream:
        stream.write(data)


def _published_manifest(out: Output) -> dict[str, Any]:
    """The manifest of a published run, under its name or the name older runs gave it."""
    for name in (MANIFEST, OLD_MANIFEST):
        manifest = _read_json(out.fs, f"{out.path}/{name}")
        if manifest is not None:
            return manifest
    return {}


def _read_json(fs: Any, path: str) -> dict[str, Any] | None:
    """The JSON object at `path`; None if it is missing, empty or not a JSON object (a file cut
    short by a crash: what it recorded is redone or refused, never trusted)."""
    if not exists(fs, path):
        return None
    with fs.open_input_stream(path) as stream:
        data = stream.read()
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def exists(fs: Any, path: str) -> bool:
    """Whether `path` (a file or a folder) is there on `fs`."""
    import pyarrow.fs as pafs

    return fs.get_file_info(path).type != pafs.FileType.NotFound


def _children(fs: Any, folder: str, dirs: bool = False) -> list[str]:
    """Names in `folder` (none if it is missing), skipping hidden and `_` names unless `dirs`."""
    import pyarrow.fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    wanted = pafs.FileType.Directory if dirs else pafs.FileType.File
    names = [Path(i.path).name for i in infos if i.type == wanted]
    return sorted(n for n in names if dirs or n[:1] not in "_.")
