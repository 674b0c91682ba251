"""Fault injection for `predict --resume`: an interrupted run's parts folder is damaged the ways a
crash, a power loss or a careless hand damages it, and the resumed run must either write every
input row exactly once, in order, and say so truthfully, or refuse in one line with exit 2.
Never exit 0 with fewer or more rows.

The interrupted run is made in this process (`predict_file`, stopped after a few chunks by its
progress callback, as a kill would stop it); the resume runs through the CLI or the API."""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clearpipe
from clearpipe.bulk.local import PredictJob, predict_file
from clearpipe.errors import InputError
from cli.helpers import assert_user_error, run

N, CHUNK, DONE = 60, 7, 5  # rows, rows per part, parts the interrupted run finished


class Stop(Exception):
    """Stands for a kill: not a user error, so the parts stay for --resume."""


@pytest.fixture(scope="module")
def clf(tiny_bert):
    return clearpipe.load(tiny_bert, device="cpu")


def _csv(path: Path, n: int = N) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review"])
        for i in range(n):
            # Commas, quotes and newlines inside cells: a spliced part shows as a wrong row.
            verdict = "good" if i % 2 else "bad,\nreally bad"
            writer.writerow([i, f'the film {i} was "{verdict}"'])
    return path


def _interrupt(clf, source: Path, out: Path, parts: int = DONE, chunk_rows: int = CHUNK) -> Path:
    """Run `predict` until `parts` parts are written, then stop it; return the parts folder."""
    seen = []

    def stop_after(chunk):
        seen.append(chunk)
        if len(seen) == parts:
            raise Stop

    with pytest.raises(Stop):
        predict_file(clf, PredictJob(source, out, chunk_rows=chunk_rows), stop_after)
    folder = out.with_name(out.name + ".parts")
    assert len(list(folder.glob("part-*"))) == parts
    return folder


def _rows(out: Path) -> list[dict]:
    suffix = out.suffix.lstrip(".")
    if suffix == "parquet":
        return pq.read_table(out).to_pylist()
    if suffix == "json":
        return json.loads(out.read_text(encoding="utf-8"))
    if suffix == "jsonl":
        # Split on "\n" alone: str.splitlines would also split a text at U+0085 or U+2028.
        return [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line]
    quoting = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if suffix == "tsv" else {}
    with open(out, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f, **quoting))


def _ids(out: Path) -> list[str]:
    return [str(row["id"]) for row in _rows(out)]


def _part(folder: Path, index: int) -> Path:
    (path,) = folder.glob(f"part-{index:06d}.*")
    return path


def _no_leftovers(tmp_path: Path) -> None:
    assert not [p.name for p in tmp_path.rglob("*clearpipe-tmp*")]


# Damage done to part 2 of 5 (or to the record of it); every one must be noticed and redone.
PART_FAULTS = {
    "zero-length": lambda p: p.write_bytes(b""),
    "short": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "garbage": lambda p: p.write_bytes(b"\xff\xfe\x00garbage\x9c" * 40),
    "missing": lambda p: p.unlink(),
    "one row dropped": lambda p: p.write_bytes(b"".join(p.read_bytes().splitlines(keepends=True)[1:])),
}


@pytest.mark.parametrize("fault", list(PART_FAULTS))
def test_a_damaged_part_is_redone_and_every_row_written_once(clf, tmp_path, fault):
    source, out = _csv(tmp_path / "in.csv"), tmp_path / "out.csv"
    folder = _interrupt(clf, source, out)
    PART_FAULTS[fault](_part(folder, 2))
    summary = predict_file(clf, PredictJob(source, out, chunk_rows=CHUNK, resume=True))
    assert _ids(out) == [str(i) for i in range(N)]
    assert [r["review"] for r in _rows(out)] == [r["review"] for r in _rows(source)]
    assert summary.rows == N and summary.resumed_rows == (DONE - 1) * CHUNK
    assert not folder.exists()


@pytest.mark.parametrize("suffix", ["tsv", "jsonl", "json", "parquet"])
def test_a_garbage_part_in_any_format_is_redone(clf, tmp_path, suffix):
    source, out = _csv(tmp_path / "in.csv"), tmp_path / f"out.{suffix}"
    folder = _interrupt(clf, source, out)
    _part(folder, 1).write_bytes(b"\xff\xfe\x00\x9c" * 100)
    summary = predict_file(clf, PredictJob(source, out, chunk_rows=CHUNK, resume=True))
    assert _ids(out) == [str(i) for i in range(N)]
    assert summary.rows == N and summary.resumed_rows == (DONE - 1) * CHUNK
    _no_leftovers(tmp_path)


@pytest.mark.slow
def test_a_garbage_part_is_redone_through_the_cli(clf, tiny_bert, tmp_path):
    source, out = _csv(tmp_path / "in.csv"), tmp_path / "out.csv"
    folder = _interrupt(clf, source, out)
    _part(folder, 1).write_bytes(b"\xff\xfe\x00\x9c" * 100)
    result = run("predict", source, "-o", out, "-m", tiny_bert, "--chunk-rows", CHUNK, "--resume")
    assert result.returncode == 0, result.stderr
    assert _ids(out) == [str(i) for i in range(N)]
    assert f"wrote {N} rows ({(DONE - 1) * CHUNK} from the interrupted run)" in result.stderr
    _no_leftovers(tmp_path)


@pytest.mark.slow
def test_an_emptied_part_as_reported_resumes_truthfully(clf, tiny_bert, tmp_path):
    # 3,000 rows in parts of 250, stopped after 6 parts, part 2 emptied (`: > part-000002.csv`).
    n, chunk = 3000, 250
    source, out = _csv(tmp_path / "in.csv", n), tmp_path / "out.csv"
    folder = _interrupt(clf, source, out, parts=6, chunk_rows=chunk)
    _part(folder, 2).write_bytes(b"")
    result = run("predict", source, "-o", out, "-m", tiny_bert, "--chunk-rows", chunk, "--resume")
    assert result.returncode == 0, result.stderr
    assert f"wrote {n} rows ({5 * chunk} from the interrupted run)" in result.stderr
    assert _ids(out) == [str(i) for i in range(n)]


def test_a_part_never_recorded_or_a_torn_record_is_redone(clf, tmp_path):
    source, out = _csv(tmp_path / "in.csv"), tmp_path / "out.csv"
    folder = _interrupt(clf, source, out)
    journal = folder / "parts.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    # The last part was renamed into place but the run died before recording it; an append was torn.
    journal.write_bytes(b"".join(lines[:-1]) + lines[-1][:20])
    _part(folder, 1).write_bytes(b"")  # and an earlier part was damaged: its record must not vouch for it
    summary = predict_file(clf, PredictJob(source, out, chunk_rows=CHUNK, resume=True))
    assert _ids(out) == [str(i) for i in range(N)]
    assert summary.resumed_rows == (DONE - 2) * CHUNK


def test_a_stray_part_is_never_assembled(clf, tmp_path):
    source, out = _csv(tmp_path / "in.csv"), tmp_path / "out.csv"
    folder = _interrupt(clf, source, out)
    (folder / "part-000099.csv").write_bytes(_part(folder, 0).read_bytes())
    predict_file(clf, PredictJob(source, out, chunk_rows=CHUNK, resume=True))
    assert _ids(out) == [str(i) for i in range(N)]


MANIFEST_FAULTS = {
    "missing": (lambda m: m.unlink(), "manifest.json is missing"),
    "empty": (lambda m: m.write_bytes(b""), "manifest.json is empty"),
    "invalid JSON": (lambda m: m.write_text('{"input": ', encoding="utf-8"), "not valid JSON"),
    "garbage": (lambda m: m.write_bytes(b"\xff\xfe\x00\x9c" * 10), "not valid JSON"),
    "not an object": (lambda m: m.write_text("[1, 2]", encoding="utf-8"), "not a JSON object"),
}


@pytest.mark.parametrize("fault", list(MANIFEST_FAULTS))
def test_a_missing_or_broken_manifest_is_refused_before_any_work(clf, tmp_path, fault):
    source, out = _csv(tmp_path / "in.csv"), tmp_path / "out.csv"
    folder = _interrupt(clf, source, out)
    damage, says = MANIFEST_FAULTS[fault]
    damage(folder / "manifest.json")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    with pytest.raises(InputError, match=says) as refused:
        predict_file(clf, PredictJob(source, out, chunk_rows=CHUNK, resume=True), _no_chunk_expected)
    assert "delete the folder" in str(refused.value) and "\n" not in str(refused.value)
    assert not out.exists()
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before  # no part redone
    _no_leftovers(tmp_path)


def _no_chunk_expected(chunk):
    raise AssertionError("a refused resume classified a chunk")


@pytest.mark.slow
def test_a_broken_manifest_is_one_line_and_exit_2_through_the_cli(clf, tiny_bert, tmp_path):
    source, out = _csv(tmp_path / "in.csv"), tmp_path / "out.csv"
    folder = _interrupt(clf, source, out)
    (folder / "manifest.json").write_bytes(b"")
    result = run("predict", source, "-o", out, "-m", tiny_bert, "--chunk-rows", CHUNK, "--resume")
    assert_user_error(result, "manifest.json is empty", "delete the folder")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()
    _no_leftovers(tmp_path)


@pytest.mark.parametrize("manifest", ["kept", "deleted"])
def test_another_chunk_size_is_refused_never_duplicated(clf, tmp_path, manifest):
    source, out = _csv(tmp_path / "in.csv"), tmp_path / "out.csv"
    folder = _interrupt(clf, source, out)
    if manifest == "deleted":
        (folder / "manifest.json").unlink()
    says = "chunk_rows" if manifest == "kept" else "manifest.json is missing"
    with pytest.raises(InputError, match=says):
        predict_file(clf, PredictJob(source, out, chunk_rows=CHUNK + 3, resume=True), _no_chunk_expected)
    assert not out.exists()


def test_resume_with_a_folder_holding_no_parts_starts_over(clf, tmp_path):
    source, out = _csv(tmp_path / "in.csv"), tmp_path / "out.csv"
    folder = _interrupt(clf, source, out)
    for path in folder.iterdir():
        path.unlink()  # nothing to duplicate: a fresh start is safe
    summary = predict_file(clf, PredictJob(source, out, chunk_rows=CHUNK, resume=True))
    assert _ids(out) == [str(i) for i in range(N)] and summary.resumed_rows == 0


FAULT = st.sampled_from([None, "zero-length", "short", "garbage", "missing", "one row dropped"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(st.text(max_size=40), min_size=1, max_size=40),
    chunk_rows=st.integers(1, 9),
    stop_after=st.integers(1, 6),
    faults=st.lists(FAULT, min_size=6, max_size=6),
)
def test_any_damage_to_any_parts_still_gives_every_row_once(clf, texts, chunk_rows, stop_after, faults):
    with tempfile.TemporaryDirectory() as tmp:
        source, out = Path(tmp) / "in.jsonl", Path(tmp) / "out.jsonl"
        rows = [{"id": i, "text": text} for i, text in enumerate(texts)]
        source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        chunks = -(-len(texts) // chunk_rows)
        if stop_after >= chunks:  # the run would finish before it could be stopped
            predict_file(clf, PredictJob(source, out, chunk_rows=chunk_rows))
        else:
            folder = _interrupt(clf, source, out, parts=stop_after, chunk_rows=chunk_rows)
            for index, fault in enumerate(faults[:stop_after]):
                if fault is not None:
                    PART_FAULTS[fault](_part(folder, index))
            summary = predict_file(clf, PredictJob(source, out, chunk_rows=chunk_rows, resume=True))
            assert summary.rows == len(texts)
        got = _rows(out)
        assert [(r["id"], r["text"]) for r in got] == [(r["id"], r["text"]) for r in rows]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names open files through /proc")
def test_parts_and_records_are_made_durable(clf, tmp_path, monkeypatch):
    # The record of a part must follow the part's own fsync and the rename's (the folder's).
    import os

    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", _name(fd))) or real_fsync(fd))
    monkeypatch.setattr(
        os, "replace", lambda a, b: events.append(("rename", Path(b).name)) or real_replace(a, b)
    )
    source, out = _csv(tmp_path / "in.csv", 10), tmp_path / "out.csv"
    predict_file(clf, PredictJob(source, out, chunk_rows=CHUNK))
    first = events.index(("rename", "part-000000.csv"))
    assert events[first - 1] == ("fsync", "part-000000.csv.tmp")
    assert events[first + 1] == ("fsync", "out.csv.parts")  # the folder, after the rename
    assert events[first + 2] == ("fsync", "parts.jsonl")  # then the record


def _name(fd: int) -> str:
    import os

    return Path(os.readlink(f"/proc/self/fd/{fd}")).name


def test_no_summary_counts_rows_that_were_not_written(clf, tmp_path):
    source, out = _csv(tmp_path / "in.csv"), tmp_path / "out.csv"
    folder = _interrupt(clf, source, out)
    _part(folder, 0).write_bytes(b"")
    _part(folder, 4).write_bytes(b"x")
    summary = predict_file(clf, PredictJob(source, out, chunk_rows=CHUNK, resume=True))
    written = len(_rows(out))
    assert summary.rows == written == N
    assert summary.resumed_rows == (DONE - 2) * CHUNK
