"""`clearpipe predict --engine ray`: one table classified by a pool of workers on a Ray cluster.

The driver checks what it can before Ray starts (the model loads, the columns exist, every text
file decodes and parses), cuts the input into units (`bulk.units`) and hands them to Ray Data:
`map_batches` with a callable class runs a fixed pool of actors, each holding one `Classifier`
built by `clearpipe.load` with the local path's options (with `--lite`, a `clearpipe.lite`
classifier of an export folder, and no torch in the workers), so each unit goes through the same
engine and the same output rows (`bulk.local.predict_chunk`) as `clearpipe predict` on one
machine, and is written as one staged part (`bulk.staging`). Ray restarts an actor that dies and
retries its task; the part it rewrites has the same name. When every unit is done the driver
counts the rows of every part against the input's and publishes. Ray is imported only here.
A token classifier (named entities) runs the same way; with one row per entity a part holds as
many rows as its unit has entities, so it is checked to be whole rather than counted.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import resource
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from clearpipe.bulk import entities, staging
from clearpipe.bulk.files import InputFile, filesystem, fingerprint, list_inputs, local_copy, named_as
from clearpipe.bulk.local import (
    Plan,
    PredictJob,
    chunk_items,
    plan_for,
    predict_chunk,
)
from clearpipe.bulk.units import Reading, Unit, cut_units, read_unit
from clearpipe.contract import TextClassifier
from clearpipe.errors import CheckpointError, ClearpipeError, InputError
from clearpipe.tables.read import Chunk, open_parquet, read_columns

PART_FORMATS = ("parquet", "csv", "tsv", "jsonl")


@dataclass(frozen=True)
class RayJob:
    """A local `PredictJob` (columns, top-k, chunk size, encoding, resume) spread over a cluster.

    `load_options` are `clearpipe.load`'s keyword arguments as the local path passes them (with
    `lite`, `clearpipe.lite.load`'s); each worker adds its own `threads` (and `device="cuda"` with
    `gpus_per_worker`).
    """

    predict: PredictJob
    input: str  # a file, folder or glob; a local path or a URI (s3://...)
    output: str  # a folder
    model: str | None = None
    load_options: dict[str, Any] = field(default_factory=dict)
    output_format: str | None = None  # default: OUTPUT's suffix when it names one, else parquet
    address: str | None = None  # default: start a Ray on this machine
    workers: int | None = None  # default: one per machine (CPU), one per GPU share (GPU)
    gpus_per_worker: float = 0.0
    lite: bool = False  # workers run `clearpipe.lite` on an export folder, without torch


@dataclass(frozen=True)
class Progress:
    rows: int  # done, those of an interrupted run included
    total: int
    seconds: float  # since the workers were asked to start
    new_rows: int  # done in this run


@dataclass(frozen=True)
class WorkerStats:
    worker: str  # host:pid
    parts: int
    rows: int
    seconds: float  # reading, classifying and writing, model load excluded
    peak_rss_mib: float
    undecided: int = 0
    empty: int = 0  # rows whose text was empty: no label, no score


@dataclass(frozen=True)
class RaySummary:
    rows: int  # written (with one row per entity: entities)
    resumed_rows: int
    parts: int
    output: str
    workers: list[WorkerStats]
    undecided: int | None = None  # rows classified by this run below min_score; None without one
    empty: int = 0  # rows classified by this run whose text was empty
    input_rows: int | None = None  # with one row per entity: the input rows they came from


@dataclass(frozen=True)
class WorkerSpec:
    """What every actor needs, built once on the driver and passed to the actor's constructor."""

    model: str | None
    load_options: dict[str, Any]
    files: list[InputFile]
    plan: Plan
    job: PredictJob
    staging: str
    suffix: str
    lite: bool = False


def predict_on_ray(
    clf: TextClassifier, job: RayJob, on_progress: Callable[[Progress], None] | None = None
) -> RaySummary:
    """Classify every row of `job.input` into a folder of parts at `job.output`, exactly once.

    `clf` is the driver's copy of the model: loading it proves the model and options are good
    before any worker starts, and gives the added columns. See the module docstring.

    >>> predict_on_ray(clearpipe.load(), RayJob(PredictJob(Path("in"), Path("out")), "in/*.csv", "out"))  # doctest: +SKIP
    RaySummary(rows=120000, resumed_rows=0, parts=30, output='out', workers=[...])
    """
    require_ray()
    if job.predict.chunk_rows < 1:
        raise InputError(f"chunk size must be at least 1 row, got {job.predict.chunk_rows}")
    files = list_inputs(job.input)
    plan = _plan(clf, job, files, output_format(job))
    options = _recorded(job.load_options, job.lite)
    identity = {**options, **asdict(plan), "fingerprint": fingerprint(files)}
    run_id = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:12]
    out = staging.Output.at(job.output)
    staged = staging.inspect(out, run_id, identity, job.predict.resume)
    if staged.manifest is not None:  # --resume of a run that was published already
        rows = int(staged.manifest["rows"])
        covered = int(staged.manifest.get("input_rows", rows))
        return RaySummary(rows, covered, len(staged.manifest["parts"]), job.output, [], input_rows=covered)
    units = [Unit(**u) for u in staged.record["units"]] if staged.record else _cut(files, plan, job)
    if staged.record is None:
        record = {"run_id": run_id, "identity": identity, "units": [asdict(u) for u in units]}
        staging.begin(out, run_id, record)
    suffix = plan.output_format
    finished = _whole_parts(out, run_id, units, staged.finished, plan)
    todo = [u for u in units if u.part(suffix) not in finished]
    model = _portable(job.model, clf)
    spec = WorkerSpec(
        model, job.load_options, files, plan, job.predict, out.staging_uri(run_id), suffix, job.lite
    )
    resumed = sum(u.rows for u in units) - sum(u.rows for u in todo)
    try:
        stats = _run(job, spec, todo, resumed, on_progress) if todo else []
    except InputError:
        staging.discard(out, run_id)  # bad input fails the same way every time: nothing to resume
        raise
    manifest = _manifest(out, run_id, identity, options, files, units, plan, stats)
    staging.publish(out, run_id, manifest)
    undecided = None if plan.decided_column is None else sum(s.undecided for s in stats)
    empty = sum(s.empty for s in stats)
    covered = manifest["input_rows"] if plan.entities == entities.ROWS else None
    return RaySummary(manifest["rows"], resumed, len(units), job.output, stats, undecided, empty, covered)


def require_ray() -> None:
    """Refuse, in one line, to run without Ray Data installed (the `clearpipe[ray]` extra)."""
    import importlib.util

    if importlib.util.find_spec("ray") is None or importlib.util.find_spec("ray.data") is None:
        raise InputError("--engine ray needs Ray Data: pip install 'clearpipe[ray]'")


def output_format(job: RayJob) -> str:
    """The parts' format: `--output-format`, else OUTPUT's suffix when it names one, else Parquet."""
    if job.output_format is not None:
        chosen = job.output_format.lower().lstrip(".")
        if chosen not in PART_FORMATS:
            raise InputError(
                f"unknown --output-format {job.output_format!r}; use one of {', '.join(PART_FORMATS)}"
            )
        return chosen
    suffix = PurePosixPath(job.output.rstrip("/")).suffix.lower().lstrip(".")
    suffix = "jsonl" if suffix == "ndjson" else suffix
    if suffix == "txt":
        raise InputError(f"{job.output}: .txt cannot hold labels and scores; use {', '.join(PART_FORMATS)}")
    if suffix == "json":
        raise InputError(f"{job.output}: parts are written as JSON lines; name the folder .jsonl")
    return suffix if suffix in PART_FORMATS else "parquet"


# The driver -------------------------------------------------------------------------------------
def _plan(clf: TextClassifier, job: RayJob, files: list[InputFile], out_fmt: str) -> Plan:
    own = filesystem(job.output)[1].rstrip("/")
    if own == filesystem(job.input)[1].rstrip("/"):
        raise InputError(f"{job.output}: the output would overwrite the input; choose another folder")
    # A folder given as INPUT that holds OUTPUT would take in the parts of an earlier run.
    within = [f.name for f in files if f.uri.split("://", 1)[-1].startswith(own + "/")]
    if within:
        raise InputError(f"{job.input} takes in {within[0]}, inside {job.output}; write the output elsewhere")
    found = _columns(files[0], _reading(job))
    if files[0].format != "jsonl":  # JSON records may differ in their keys; tables may not
        for other in files[1:]:
            theirs = _columns(other, _reading(job))
            if theirs != found:
                raise InputError(
                    f"{other.name} has columns {theirs}, {files[0].name} has {found}: every input "
                    "file must have the same columns"
                )
    first = replace(job.predict, input=Path(files[0].name))  # a missing column is named in this file
    size = sum(f.size for f in files)
    return plan_for(clf, first, found, out_fmt, job.input, size, max(f.mtime_ns for f in files))


def _reading(job: RayJob) -> Reading:
    return Reading(job.predict.chunk_rows, job.predict.encoding, job.predict.header)


def _columns(file: InputFile, reading: Reading) -> list[str]:
    if file.format == "parquet":
        fs, path = filesystem(file.uri)
        with fs.open_input_file(path) as source:
            return list(open_parquet(file.name, source).schema_arrow.names)
    with local_copy(file) as copy, named_as(copy, file.name):
        return read_columns(copy, reading.encoding, reading.header)


def _cut(files: list[InputFile], plan: Plan, job: RayJob) -> list[Unit]:
    def check(chunk: Chunk, file: InputFile) -> None:
        chunk_items(chunk, plan, Path(file.name))  # a missing text fails here, as it does locally

    texts = [c for c in (plan.text_column, plan.pair_column) if c is not None]
    return cut_units(files, _reading(job), texts, check)


def _whole_parts(
    out: staging.Output, run_id: str, units: list[Unit], finished: set[str], plan: Plan
) -> set[str]:
    """The interrupted run's parts that hold their unit's rows, counted from the parts. A part
    that does not (cut short or damaged by a crash) is deleted, so that its unit is redone."""
    whole = set()
    for unit in units:
        name = unit.part(plan.output_format)
        if name not in finished:
            continue
        folder = _folder_of(out, run_id, name)
        if _holds_unit(staging.count_rows(out, folder, name, plan.output_format), unit, plan):
            whole.add(name)
        else:
            out.fs.delete_file(f"{folder}/{name}")
    return whole


def _holds_unit(rows: int | None, unit: Unit, plan: Plan) -> bool:
    """Whether a part holding `rows` (None: not a whole part) is its unit's output: one row per
    input row, or with one row per entity any whole part (parts are written whole or not at all;
    how many entities a unit has is known only from its part)."""
    return rows is not None if plan.entities == entities.ROWS else rows == unit.rows


def _folder_of(out: staging.Output, run_id: str, name: str) -> str:
    """Where a part is: still staged, or moved into the output by an interrupted publish."""
    folder = out.staging(run_id)
    return folder if staging.exists(out.fs, f"{folder}/{name}") else out.path


def _recorded(load_options: dict[str, Any], lite: bool = False) -> dict[str, Any]:
    """Every option of `clearpipe.load` (with `lite`, of `clearpipe.lite.load`, and `lite: True`)
    with the value it takes (defaults filled in, so that a run and its resume agree however they
    spelled them), except where and on how many threads a worker runs, which may change between a
    run and its resume."""
    import inspect

    if lite:
        from clearpipe.lite import load
    else:
        from clearpipe.classifier import load

    params = inspect.signature(load).parameters.values()
    skipped = ("model", "folder", "device", "threads")
    options = {p.name: load_options.get(p.name, p.default) for p in params if p.name not in skipped}
    return options | ({"lite": True} if lite else {})


def _portable(model: str | None, clf: TextClassifier) -> str | None:
    """The model as workers should load it: None stays the embedded default (installed on every
    machine, maybe elsewhere), a folder becomes absolute (workers do not share the driver's cwd)."""
    if model is None:
        return None
    local = Path(clf.source)
    return str(local.resolve()) if local.exists() else clf.source  # a hub id stays as it is


def _manifest(
    out: staging.Output,
    run_id: str,
    identity: dict[str, Any],
    options: dict[str, Any],
    files: list[InputFile],
    units: list[Unit],
    plan: Plan,
    stats: list[WorkerStats],
) -> dict[str, Any]:
    """The manifest, after counting every part's rows from the part itself: a part missing or
    holding other than its unit's rows stops the run before anything is published, in one line
    (the part stays staged; `--resume` redoes it)."""
    from clearpipe import __version__

    parts = []
    for unit in units:
        name = unit.part(plan.output_format)
        folder = _folder_of(out, run_id, name)
        rows = staging.count_rows(out, folder, name, plan.output_format)
        if not _holds_unit(rows, unit, plan):
            held = "is missing or not a whole part" if rows is None else f"holds {rows} rows"
            raise ClearpipeError(
                f"{out.uri}: {name} {held} where its input has {unit.rows} rows; nothing was published: "
                "rerun with --resume to redo it"
            )
        parts.append(
            {
                "file": name,
                "rows": rows,
                "input": files[unit.file].name,
                "first_row": unit.first_row,
                "input_rows": unit.rows,
            }
        )
    return {
        "clearpipe": __version__,
        "run_id": run_id,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "rows": sum(p["rows"] for p in parts),
        "input_rows": sum(p["input_rows"] for p in parts),
        "format": plan.output_format,
        "columns": plan.columns,
        "model": plan.model,
        "options": options,
        "plan": asdict(plan),
        "input": {
            "spec": plan.input,
            "fingerprint": identity["fingerprint"],
            "files": [asdict(f) for f in files],
        },
        "parts": parts,
        "workers": [asdict(s) for s in stats],
    }


# Ray --------------------------------------------------------------------------------------------
def _run(
    job: RayJob,
    spec: WorkerSpec,
    todo: list[Unit],
    resumed: int,
    on_progress: Callable[[Progress], None] | None,
) -> list[WorkerStats]:
    import ray
    import ray.data

    started_ray = _connect(job.address)
    try:
        workers, cpus = _pool(job, len(todo))
        where = {"threads": cpus}
        if not job.lite:  # lite runs on the CPU and takes no device
            where["device"] = "cuda" if job.gpus_per_worker else job.load_options.get("device", "auto")
        spec = replace(spec, load_options={**spec.load_options, **where})
        units = ray.data.from_items(
            [{"unit": json.dumps(asdict(u))} for u in todo], override_num_blocks=len(todo)
        )
        results = units.map_batches(
            Predictor,
            fn_constructor_kwargs={"spec": spec},
            batch_size=1,  # one unit per call: one part per task, so a retry redoes one part
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=cpus,
            num_gpus=job.gpus_per_worker or None,
        )
        return _collect(results, sum(u.rows for u in todo) + resumed, resumed, on_progress)
    finally:
        if started_ray:
            ray.shutdown()


def _connect(address: str | None) -> bool:
    """Join the cluster at `address`, or start a Ray on this machine; True when this call started it."""
    import ray
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False  # progress is ours, on one line
    # A worker's error reaches the user as one line (see Predictor.report), not Ray Data's log.
    logging.getLogger("ray.data").setLevel(logging.CRITICAL)
    if ray.is_initialized():
        return False
    # Ray's C++ core logs an error-level line for every Ray Data actor pool (its constructor
    # arguments sit in the object store, ray-project/ray#53727); failures still reach us as
    # exceptions. RAY_BACKEND_LOG_LEVEL=info brings the logs back.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    quiet: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    try:
        if address:
            ray.init(address=address, **quiet)
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, **quiet)
    except ConnectionError as exc:
        raise InputError(f"cannot reach a Ray cluster at {address}: {exc}") from None
    return True


def _pool(job: RayJob, units: int) -> tuple[int, int]:
    """Workers and CPUs per worker: on CPUs, the cluster's cores split evenly (threads per actor =
    cores / workers); on GPUs, one actor per `gpus_per_worker` share, with a few cores to tokenize."""
    import ray

    resources = ray.cluster_resources()
    cpus, gpus = int(resources.get("CPU", 1)), float(resources.get("GPU", 0))
    if job.gpus_per_worker:
        workers = job.workers or int(gpus // job.gpus_per_worker)
        if workers < 1 or workers * job.gpus_per_worker > gpus:
            raise InputError(
                f"{max(workers, 1)} workers x --gpus-per-worker {job.gpus_per_worker:g} need more GPUs than "
                f"the cluster's {gpus:g}"
            )
        return min(workers, units), max(1, min(4, cpus // workers))
    workers = job.workers or sum(1 for node in ray.nodes() if node["Alive"])
    if workers > cpus:
        raise InputError(f"--workers {workers} is more than the cluster's {cpus} CPUs")
    return min(workers, units), max(1, cpus // workers)


def _collect(
    results: Any, total: int, resumed: int, on_progress: Callable[[Progress], None] | None
) -> list[WorkerStats]:
    reports: dict[str, dict[str, Any]] = {}
    start = time.perf_counter()
    rows = iter(results.iter_rows())
    try:
        for report in rows:
            _raise_user_error(report)
            reports.setdefault(report["part"], report)  # a part reported twice (a retried task) counts once
            if on_progress is not None:
                new = sum(r["rows"] for r in reports.values())
                on_progress(Progress(resumed + new, total, time.perf_counter() - start, new))
    finally:
        getattr(rows, "close", lambda: None)()  # stop the pipeline now, not when collected
    return _stats(list(reports.values()))


def _raise_user_error(report: dict[str, Any]) -> None:
    """Raise the user's mistake a worker reported, as the local path would have raised it."""
    if report["error"]:
        kinds = {kind.__name__: kind for kind in (ClearpipeError, InputError, CheckpointError)}
        raise kinds.get(report["error"], ClearpipeError)(report["message"])


def _stats(reports: list[dict[str, Any]]) -> list[WorkerStats]:
    by_worker: dict[str, list[dict[str, Any]]] = {}
    for report in reports:
        by_worker.setdefault(report["worker"], []).append(report)
    return [
        WorkerStats(
            worker=worker,
            parts=len(done),
            rows=sum(int(r["rows"]) for r in done),
            seconds=round(sum(float(r["seconds"]) for r in done), 3),
            peak_rss_mib=max(float(r["peak_rss_mib"]) for r in done),
            undecided=sum(int(r["undecided"]) for r in done),
            empty=sum(int(r["empty"]) for r in done),
        )
        for worker, done in sorted(by_worker.items())
    ]


class Predictor:
    """One Ray actor: one classifier, loaded once, turning unit after unit into staged parts."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        self.error: ClearpipeError | None = None
        try:
            self.clf = _load(spec)
        except ClearpipeError as exc:  # say, the model folder is missing on this machine
            self.error = exc
        # The actor owns its process, as the CLI does: what loading built lives as long as it
        # does, so later collections need not walk it (see clearpipe.cli.startup).
        gc.freeze()

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        reports = [self.report(Unit(**json.loads(str(text)))) for text in batch["unit"]]
        return {key: [r[key] for r in reports] for key in reports[0]}

    def report(self, unit: Unit) -> dict[str, Any]:
        """`classify`'s report, or the user's mistake that stopped it. Ray delivers an exception
        to the driver as its traceback's text only, so a mistake travels as data and the driver
        raises it again, as one line (see `_raise_user_error`)."""
        try:
            if self.error is not None:
                raise self.error
            return self.classify(unit)
        except ClearpipeError as exc:
            failed = {"part": unit.part(self.spec.suffix), "rows": 0, "written": 0, "worker": self.worker}
            return {
                **failed,
                "seconds": 0.0,
                "peak_rss_mib": _peak_rss_mib(),
                "undecided": 0,
                "empty": 0,
                "error": type(exc).__name__,
                "message": str(exc),
            }

    def classify(self, unit: Unit) -> dict[str, Any]:
        """Read, classify and stage one unit; report what was done, by whom, in how long."""
        start = time.perf_counter()
        file = self.spec.files[unit.file]
        job = self.spec.job
        chunk, types = read_unit(file, unit, Reading(job.chunk_rows, job.encoding, job.header))
        done = predict_chunk(self.clf, chunk, self.spec.plan, replace(job, input=Path(file.name)))
        name = unit.part(self.spec.suffix)
        staging.put_part(self.spec.staging, name, done.rows, self.spec.plan.columns, self.spec.suffix, types)
        return {
            "part": name,
            "rows": done.input_rows,
            "written": len(done.rows),
            "worker": self.worker,
            "seconds": time.perf_counter() - start,
            "peak_rss_mib": _peak_rss_mib(),
            "undecided": done.undecided,
            "empty": done.empty,
            "error": "",
            "message": "",
        }


def _load(spec: WorkerSpec) -> TextClassifier:
    """The worker's classifier: `clearpipe.lite`'s for `--lite` (imports no torch), else `clearpipe.load`'s."""
    if spec.lite:
        from clearpipe import lite

        return lite.load(spec.model, **spec.load_options)
    from clearpipe.classifier import load
    from clearpipe.engine import collector

    with collector.paused():  # see clearpipe.engine.collector
        return load(spec.model, **spec.load_options)


def _peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB on Linux
