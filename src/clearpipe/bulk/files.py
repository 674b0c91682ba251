"""The input files of a distributed run: a file, a folder or a glob, local or remote.

Paths go through pyarrow's filesystems, so `s3://bucket/prefix/` (or `gs://`, `hdfs://`) works
wherever pyarrow has the credentials, and a local path works everywhere. A folder is read
recursively; names starting with `_` or `.` are skipped, as Spark and pyarrow's datasets skip
them, so a folder written by `clearpipe predict --engine ray` (parts, `_manifest.json`,
`_SUCCESS`, `_staging/`) can be the input of the next run.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import itertools
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from clearpipe.errors import InputError
from clearpipe.tables.read import table_format

# The formats a worker can read a slice of; a .json array can only be parsed whole.
SPLITTABLE = ("parquet", "csv", "tsv", "jsonl", "txt")
_GLOB = set("*?[")


@dataclass(frozen=True)
class InputFile:
    """One input file: `uri` is what a worker opens (an absolute local path, or `s3://bucket/key`);
    `name` is what messages call it (a single file as the user typed it, so errors read as they do
    locally)."""

    uri: str
    name: str
    size: int
    mtime_ns: int
    format: str


def filesystem(uri: str) -> tuple[Any, str]:
    """The pyarrow filesystem holding `uri`, and the path within it.

    >>> filesystem("/data/reviews.csv")  # doctest: +SKIP
    (<pyarrow._fs.LocalFileSystem ...>, '/data/reviews.csv')
    """
    import pyarrow.fs as pafs

    if "://" not in uri:
        return pafs.LocalFileSystem(), str(Path(uri).expanduser().absolute())
    try:
        return pafs.FileSystem.from_uri(uri)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for a bad URI
        raise InputError(f"{uri}: cannot open this location: {exc}") from None


def is_local(fs: Any) -> bool:
    return fs.type_name == "local"


def list_inputs(spec: str) -> list[InputFile]:
    """The table files named by `spec` (a file, a folder or a glob), sorted, all of one format.

    >>> [f.uri for f in list_inputs("data/*.csv")]  # doctest: +SKIP
    ['/home/me/data/a.csv', '/home/me/data/b.csv']
    """
    import pyarrow.fs as pafs

    fs, path = filesystem(spec)
    if _GLOB & set(path):
        pattern = PurePosixPath(path).parts
        infos = [i for i in _walk(fs, _glob_base(path)) if _matches(PurePosixPath(i.path).parts, pattern)]
    else:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.NotFound:
            raise InputError(f"{spec}: no such file or folder")
        if info.type == pafs.FileType.File:
            if table_format(Path(path)) == "json":  # an unknown suffix fails here as it does locally
                raise InputError(f"{spec}: a .json array cannot be split among workers; convert it to .jsonl")
            infos = [info]
        else:
            infos = list(_walk(fs, path))
    infos = [i for i in infos if _suffix_format(i.path) is not None]
    if not infos:
        raise InputError(f"{spec}: no .{', .'.join(SPLITTABLE)} files found")
    single = len(infos) == 1 and infos[0].path == path
    files = [_input_file(spec, fs, info, single) for info in infos]
    return _one_format(spec, sorted(files, key=lambda f: f.uri))


def fingerprint(files: list[InputFile]) -> str:
    """A digest of every file's name, size and modification time: what `--resume` must find again."""
    listed = [[f.uri, f.size, f.mtime_ns] for f in files]
    return hashlib.sha256(json.dumps(listed).encode()).hexdigest()[:16]


@contextlib.contextmanager
def local_copy(file: InputFile) -> Iterator[Path]:
    """`file` as a local path: itself, or a temporary download of a remote file."""
    fs, path = filesystem(file.uri)
    if is_local(fs):
        yield Path(file.name)
        return
    import pyarrow.fs as pafs

    with tempfile.TemporaryDirectory(prefix="clearpipe-") as tmp:
        copy = Path(tmp) / PurePosixPath(path).name
        pafs.copy_files(path, str(copy), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
        yield copy


@contextlib.contextmanager
def named_as(copy: Path, uri: str) -> Iterator[None]:
    """Errors raised about a temporary copy name the file the user gave instead."""
    try:
        yield
    except InputError as exc:
        raise InputError(str(exc).replace(str(copy), uri)) from None


def _walk(fs: Any, base: str) -> Iterator[Any]:
    import pyarrow.fs as pafs

    selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    for info in fs.get_file_info(selector):
        relative = PurePosixPath(info.path).relative_to(PurePosixPath(base))
        if info.type == pafs.FileType.File and not any(p[:1] in "_." for p in relative.parts):
            yield info


def _glob_base(path: str) -> str:
    fixed = list(itertools.takewhile(lambda part: not _GLOB & set(part), PurePosixPath(path).parts))
    return str(PurePosixPath(*fixed)) if fixed else "."


def _matches(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Glob matching by path segment: `*` stays within one folder, `**` spans any number."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_matches(parts[i:], pattern[1:]) for i in range(len(parts) + 1))
    return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and _matches(parts[1:], pattern[1:])


def _suffix_format(path: str) -> str | None:
    suffix = PurePosixPath(path).suffix.lower().lstrip(".")
    suffix = "jsonl" if suffix == "ndjson" else suffix
    return suffix if suffix in SPLITTABLE else None


def _input_file(spec: str, fs: Any, info: Any, single: bool) -> InputFile:
    uri = info.path if is_local(fs) else f"{spec.split('://', 1)[0]}://{info.path}"
    name = (str(Path(spec)) if is_local(fs) else spec) if single else uri
    return InputFile(uri, name, info.size, info.mtime_ns or 0, _suffix_format(info.path) or "")


def _one_format(spec: str, files: list[InputFile]) -> list[InputFile]:
    formats = sorted({f.format for f in files})
    if len(formats) > 1:
        raise InputError(
            f"{spec}: mixes formats ({', '.join(formats)}); point it at files of one format, e.g. a glob"
        )
    return files
