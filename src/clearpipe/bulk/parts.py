"""The parts folder of a local `predict` run (`OUTPUT.parts/`), and what `--resume` may trust in it.

`manifest.json` holds the run's plan, written durably before the first part. Each part is then
written durably (`tables.write.write_part`: fsync, rename, fsync the folder) and only after that
recorded in `parts.jsonl`, one JSON line appended and fsynced: its file, rows, sha256, and how
many of its rows were empty or not decided. On `--resume` a part is reused only when its record
is there and the file still has that sha256; any other part (zero-length, cut short, garbage,
missing, never recorded) is classified again, so the output holds every input row exactly once.
A folder whose manifest is missing, empty or not valid JSON cannot be checked against this run:
it is refused in one line, before any work, rather than guessed at.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clearpipe.errors import InputError
from clearpipe.tables.write import sync_folder, write_durably

MANIFEST = "manifest.json"
JOURNAL = "parts.jsonl"
_PART = re.compile(r"part-\d{6}\.[a-z]+")


@dataclass(frozen=True)
class PartRecord:
    """One finished part, as recorded after it was made durable."""

    file: str
    rows: int
    sha256: str
    empty: int = 0  # rows whose text was empty: no label, no score
    undecided: int = 0  # rows whose best score is below the plan's min_score
    input_rows: int | None = None  # the input rows it covers, where that is not `rows` (one row per entity)

    def covers(self) -> int:
        """The input rows this part was made from."""
        return self.rows if self.input_rows is None else self.input_rows


def part_name(index: int, suffix: str) -> str:
    """The file name of the `index`-th part (0-based), which sorts in input order.

    >>> part_name(3, "csv")
    'part-000003.csv'
    """
    return f"part-{index:06d}.{suffix}"


def open_parts(folder: Path, plan: dict[str, Any], resume: bool) -> dict[str, PartRecord]:
    """Create `folder` for a new run, or check an interrupted run's; return its parts that are
    intact, by file name (none for a new run).

    >>> open_parts(Path("out.csv.parts"), asdict(plan), resume=True)  # doctest: +SKIP
    {'part-000000.csv': PartRecord(file='part-000000.csv', rows=250, sha256='9f2c...')}
    """
    if not resume:
        if folder.exists():
            raise InputError(
                f"{folder} holds an interrupted run: pass --resume to continue it, or delete the folder"
            )
        return _start(folder, plan)
    if not (folder / MANIFEST).exists():
        if _has_parts(folder):
            raise _unreadable(folder, "is missing")
        return _start(folder, plan)
    _check_same_run(folder, _read_manifest(folder), plan)
    for stale in folder.glob("*.tmp"):
        stale.unlink()  # a part that was being written when the run stopped
    return _intact_parts(folder)


def commit(folder: Path, record: PartRecord) -> None:
    """Record a part that `write_part` has made durable; the record is durable when this returns."""
    with open(folder / JOURNAL, "ab") as journal:
        journal.write(_line(record))
        journal.flush()
        os.fsync(journal.fileno())


def _start(folder: Path, plan: dict[str, Any]) -> dict[str, PartRecord]:
    folder.mkdir(parents=True, exist_ok=True)
    sync_folder(folder.parent)
    write_durably(folder / JOURNAL, b"")
    write_durably(folder / MANIFEST, json.dumps(plan, indent=2).encode())
    return {}


def _has_parts(folder: Path) -> bool:
    return folder.is_dir() and any(p.name.startswith("part-") or p.name == JOURNAL for p in folder.iterdir())


def _unreadable(folder: Path, why: str) -> InputError:
    return InputError(
        f"cannot resume {folder}: its {MANIFEST} {why}, so its parts cannot be checked against this run; "
        "delete the folder to start over"
    )


def _read_manifest(folder: Path) -> dict[str, Any]:
    data = (folder / MANIFEST).read_bytes()
    if not data.strip():
        raise _unreadable(folder, "is empty")
    try:
        recorded = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _unreadable(folder, "is not valid JSON") from None
    if not isinstance(recorded, dict):
        raise _unreadable(folder, "is not a JSON object")
    return recorded


def _check_same_run(folder: Path, recorded: dict[str, Any], plan: dict[str, Any]) -> None:
    differences = [k for k, v in plan.items() if recorded.get(k) != v]
    if differences:
        raise InputError(
            f"cannot resume {folder}: this run differs from the interrupted one in {', '.join(differences)}; "
            "rerun with the same input, options and model, or delete the folder to start over"
        )


def _intact_parts(folder: Path) -> dict[str, PartRecord]:
    """The recorded parts whose file still has its recorded sha256. The journal is rewritten
    with these alone, so a line torn by the interruption cannot swallow the next record."""
    records = _read_journal(folder / JOURNAL)
    intact = {name: r for name, r in records.items() if _sha256(folder / name) == r.sha256}
    write_durably(folder / JOURNAL, b"".join(_line(r) for r in intact.values()))
    return intact


def _read_journal(path: Path) -> dict[str, PartRecord]:
    """The journal's records by file (a part redone later has a later record, which wins).
    A line that is not a valid record is skipped: its part, if any, is redone."""
    records: dict[str, PartRecord] = {}
    data = path.read_bytes() if path.is_file() else b""
    for line in data.splitlines():
        record = _record(line)
        if record is not None:
            records[record.file] = record
    return records


def _record(line: bytes) -> PartRecord | None:
    try:
        fields = json.loads(line.decode("utf-8"))
        record = PartRecord(**fields)
    except (UnicodeDecodeError, json.JSONDecodeError, TypeError):
        return None
    valid = (
        isinstance(record.file, str)
        and _PART.fullmatch(record.file) is not None  # a part of this folder, never a path elsewhere
        and all(isinstance(n, int) and n >= 0 for n in (record.rows, record.empty, record.undecided))
        and (record.input_rows is None or (isinstance(record.input_rows, int) and record.input_rows >= 0))
        and isinstance(record.sha256, str)
    )
    return record if valid else None


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _line(record: PartRecord) -> bytes:
    return json.dumps(asdict(record)).encode() + b"\n"
