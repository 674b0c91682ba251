"""`clearpipe predict`: classify every row of a table file, in bounded memory, resumably.

The input is streamed in chunks; each chunk is classified by the same `Classifier` (and so the
same engine) as every other entry point, or by `clearpipe.lite` (`predict --lite`), and written
as one atomic part file beside the output.
A run that is interrupted leaves its complete parts and a manifest behind; `resume=True`
checks that the manifest matches this run, skips the rows already done and carries on, so
every input row appears exactly once, in order, in the assembled output.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from clearpipe.errors import InputError, where
from clearpipe.inputs import TextInput
from clearpipe.postprocess import BEST, Predictions, TopK
from clearpipe.tables.columns import PAIR_NAMES, TEXT_NAMES, pick_column, pick_optional_column
from clearpipe.tables.read import Chunk, Row, read_chunks, read_columns, table_format
from clearpipe.tables.write import PART_SUFFIX, assemble, write_part

MANIFEST = "manifest.json"


class Classifier(Protocol):
    """What bulk prediction needs of a classifier. `clearpipe.Classifier` and
    `clearpipe.lite.LiteClassifier` both have it; naming neither keeps torch out of `predict --lite`."""

    source: str

    @property
    def long_text(self) -> str: ...

    @property
    def thresholds(self) -> tuple[float, ...] | None: ...

    def predict_items(self, items: list[TextInput]) -> Predictions: ...


@dataclass(frozen=True)
class PredictJob:
    """What to classify and where to write it."""

    input: Path
    output: Path
    text_column: str | None = None
    pair_column: str | None = None
    top_k: TopK = BEST
    chunk_rows: int = 4096
    encoding: str = "utf-8"
    resume: bool = False
    header: bool = True  # False: a CSV/TSV input starts with data; columns "1", "2", ...
    min_score: float | None = None  # adds a "decided" column; checked by `Classifier.check_min_score`


@dataclass(frozen=True)
class Plan:
    """The resolved columns and formats of a job, recorded in the manifest for `--resume`."""

    input: str
    input_size: int
    input_mtime_ns: int
    output_format: str
    text_column: str
    pair_column: str | None
    columns: list[str]
    label_column: str
    score_column: str
    top_k_column: str | None
    windows_column: str | None
    top_k: int | str | None
    chunk_rows: int
    encoding: str
    model: str
    labels_column: str | None = None  # a multi-label model's labels that apply, by their thresholds
    decided_column: str | None = None  # with a min_score: whether the best score reaches it
    min_score: float | None = None


@dataclass(frozen=True)
class Summary:
    rows: int
    resumed_rows: int
    output: Path
    undecided: int | None = None  # rows classified by this run below min_score; None without one


Progress = Callable[[Chunk], None]


def predict_file(clf: Classifier, job: PredictJob, on_chunk: Progress | None = None) -> Summary:
    """Classify every row of `job.input` into `job.output`; see the module docstring.

    >>> predict_file(clearpipe.load(), PredictJob(Path("reviews.csv"), Path("labelled.csv")))  # doctest: +SKIP
    Summary(rows=1200, resumed_rows=0, output=PosixPath('labelled.csv'))
    """
    if job.chunk_rows < 1:
        raise InputError(f"chunk size must be at least 1 row, got {job.chunk_rows}")
    plan = make_plan(clf, job)
    parts_dir = job.output.with_name(job.output.name + ".parts")
    done = _prepare_parts(parts_dir, plan, job.resume)
    try:
        rows, resumed, undecided = _write_parts(clf, job, plan, parts_dir, done, on_chunk)
    except InputError:
        # Bad input fails the same way on every attempt, so these parts can never be resumed;
        # an interruption (kill, Ctrl-C, crash) keeps them for --resume.
        shutil.rmtree(parts_dir, ignore_errors=True)
        raise
    parts = sorted(parts_dir.glob(f"part-*.{PART_SUFFIX[plan.output_format]}"))
    assemble(parts, plan.columns, plan.output_format, job.output)
    shutil.rmtree(parts_dir)
    return Summary(rows=rows, resumed_rows=resumed, output=job.output, undecided=undecided)


def _write_parts(
    clf: Classifier, job: PredictJob, plan: Plan, parts_dir: Path, done: int, on_chunk: Progress | None
) -> tuple[int, int, int | None]:
    rows = resumed = undecided = 0
    for index, chunk in enumerate(read_chunks(job.input, job.chunk_rows, job.encoding, job.header)):
        rows += len(chunk.rows)
        if index < done:
            resumed += len(chunk.rows)
        else:
            part = parts_dir / f"part-{index:06d}.{PART_SUFFIX[plan.output_format]}"
            records = classify_chunk(clf, chunk, plan, job)
            undecided += count_undecided(records, plan)
            write_part(records, plan.columns, plan.output_format, part)
        if on_chunk is not None:
            on_chunk(chunk)
    return rows, resumed, None if plan.decided_column is None else undecided


def count_undecided(records: list[Row], plan: Plan) -> int:
    """How many of `classify_chunk`'s rows are not decided (best score below the plan's min_score)."""
    column = plan.decided_column
    return 0 if column is None else sum(1 for record in records if record[column] is False)


def make_plan(clf: Classifier, job: PredictJob) -> Plan:
    """Resolve formats and columns, refusing bad combinations before any work is done."""
    table_format(job.input)
    out_fmt = table_format(job.output, role="output")
    if out_fmt == "txt":
        raise InputError(
            f"{job.output}: .txt cannot hold labels and scores; write .csv, .tsv, .jsonl, .json or .parquet"
        )
    if job.output.resolve() == job.input.resolve():
        raise InputError(f"{job.output}: the output would overwrite the input; choose another file")
    found = read_columns(job.input, job.encoding, job.header)
    stat = job.input.stat()
    return plan_for(clf, job, found, out_fmt, str(job.input.resolve()), stat.st_size, stat.st_mtime_ns)


def plan_for(
    clf: Classifier, job: PredictJob, found: list[str], out_fmt: str, input: str, size: int, mtime_ns: int
) -> Plan:
    """The plan of a job whose input has the columns `found`: the text and pair columns, the added
    ones, and what `--resume` compares. `bulk.ray` calls it too, for an input of many files.

    >>> plan_for(clf, job, ["id", "review"], "csv", "reviews.csv", 2048, 0).text_column  # doctest: +SKIP
    'review'
    """
    text = pick_column(found, job.text_column, TEXT_NAMES, "text", "--text-column", job.input)
    pair = pick_optional_column(
        [c for c in found if c != text], job.pair_column, PAIR_NAMES, "--text-pair-column", job.input
    )
    added = _added_columns(
        found,
        top_k=job.top_k is not BEST,
        windows=clf.long_text == "chunk",
        labels=clf.thresholds is not None,
        decided=job.min_score is not None,
    )
    return Plan(
        input=input,
        input_size=size,
        input_mtime_ns=mtime_ns,
        output_format=out_fmt,
        text_column=text,
        pair_column=pair,
        columns=[*found, *(c for c in added.values() if c)],
        label_column=added["label"],
        score_column=added["score"],
        top_k_column=added["top_k"],
        windows_column=added["windows"],
        top_k="best" if job.top_k is BEST else job.top_k,
        chunk_rows=job.chunk_rows,
        encoding=job.encoding,
        model=clf.source,
        labels_column=added["labels"],
        decided_column=added["decided"],
        min_score=job.min_score,
    )


def _added_columns(found: list[str], **wanted: bool) -> dict[str, str | None]:
    """The names of the added columns, in order: label, score, then those `wanted` (None if not)."""
    wanted = {"label": True, "score": True, **wanted}
    names = [name for name, on in wanted.items() if on]
    # Inputs often carry a gold "label" column (SST-2 does): predictions then get a prefix
    # rather than overwriting it.
    prefix = "predicted_" if any(name in found for name in names) else ""
    clash = [prefix + name for name in names if prefix + name in found]
    if clash:
        raise InputError(f"the input already has columns {clash}; rename them before predicting")
    return {name: prefix + name if on else None for name, on in wanted.items()}


def _prepare_parts(parts_dir: Path, plan: Plan, resume: bool) -> int:
    """Create the parts folder, or on resume check its manifest; return how many parts are done."""
    manifest = parts_dir / MANIFEST
    if not resume:
        if parts_dir.exists():
            raise InputError(
                f"{parts_dir} holds an interrupted run: pass --resume to continue it, or delete the folder"
            )
        parts_dir.mkdir(parents=True)
        manifest.write_text(json.dumps(asdict(plan), indent=2), encoding="utf-8")
        return 0
    if not manifest.is_file():
        parts_dir.mkdir(parents=True, exist_ok=True)
        manifest.write_text(json.dumps(asdict(plan), indent=2), encoding="utf-8")
        return 0
    recorded = json.loads(manifest.read_text(encoding="utf-8"))
    differences = [k for k, v in asdict(plan).items() if recorded.get(k) != v]
    if differences:
        raise InputError(
            f"cannot resume {parts_dir}: this run differs from the interrupted one in {', '.join(differences)}; "
            "rerun with the same input, options and model, or delete the folder to start over"
        )
    for stale in parts_dir.glob("*.tmp"):
        stale.unlink()  # a part that was being written when the run stopped
    suffix = PART_SUFFIX[plan.output_format]
    done = 0
    while (parts_dir / f"part-{done:06d}.{suffix}").is_file():
        done += 1
    return done


def classify_chunk(clf: Classifier, chunk: Chunk, plan: Plan, job: PredictJob) -> list[Row]:
    """The rows of `chunk` with the plan's added columns (label, score, ...): the one place that
    turns predictions into output rows, for `predict_file` and for `bulk.ray`'s workers.

    >>> classify_chunk(clf, chunk, plan, job)[0]  # doctest: +SKIP
    {'id': '1', 'review': 'Great phone.', 'label': 'positive', 'score': 0.98}
    """
    predictions = clf.predict_items(chunk_items(chunk, plan, job.input))
    best = predictions.to_output(min_score=plan.min_score)
    ranked = None if plan.top_k_column is None else predictions.to_output(job.top_k, plan.min_score)
    applying = _applying(predictions) if plan.labels_column is not None else None
    out = []
    for i, row in enumerate(chunk.rows):
        record = dict(row)
        record[plan.label_column] = best[i]["label"]
        record[plan.score_column] = best[i]["score"]
        if ranked is not None:
            record[plan.top_k_column] = ranked[i]
        if plan.windows_column is not None:
            record[plan.windows_column] = best[i]["windows"]
        if applying is not None:
            record[plan.labels_column] = applying[i]
        if plan.decided_column is not None:
            record[plan.decided_column] = best[i]["decided"]
        out.append(record)
    return out


def _applying(predictions: Predictions) -> list[list[str]]:
    """Per row, the labels that apply by their thresholds, highest score first (maybe none)."""
    applies = predictions.applies()
    assert applies is not None  # a multi-label model's sigmoid scores
    order = np.argsort(-predictions.scores, axis=1, kind="stable")  # (N, L)
    return [[predictions.labels[j] for j in row if applies[i, j]] for i, row in enumerate(order)]


def chunk_items(chunk: Chunk, plan: Plan, file: Path) -> list[TextInput]:
    """The texts (or pairs) of `chunk`'s rows, or an `InputError` naming the first missing one.

    >>> chunk_items(Chunk([{"text": "good"}], 1, 5), plan, Path("in.txt"))  # doctest: +SKIP
    ['good']
    """
    return [_item(row, chunk.first_row + i, plan, file) for i, row in enumerate(chunk.rows)]


def _item(row: Row, number: int, plan: Plan, file: Path) -> TextInput:
    text = _text(row, plan.text_column, number, file)
    if plan.pair_column is None:
        return text
    return (text, _text(row, plan.pair_column, number, file))


def _text(row: Row, column: str, number: int, file: Path) -> str:
    value: Any = row.get(column)
    if isinstance(value, str):
        return value
    if value is None:
        raise InputError(f"{where(file, row=number, column=column)}: the text is missing (null)")
    raise InputError(
        f"{where(file, row=number, column=column)}: expected text, got {type(value).__name__} {value!r:.40}"
    )
