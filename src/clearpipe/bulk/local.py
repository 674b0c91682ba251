"""`clearpipe predict`: classify every row of a table file, in bounded memory, resumably.

The input is streamed in chunks; each chunk is classified by the same `Classifier` (and so the
same engine) as every other entry point, or by `clearpipe.lite` (`predict --lite`), and written
as one durable part file beside the output (`bulk.parts` keeps the folder and its records).
A run that is interrupted leaves its parts and a manifest behind; `resume=True` checks that the
manifest matches this run, reuses the parts whose recorded sha256 still matches, classifies
every other chunk again and carries on, so every input row appears exactly once, in order, in
the assembled output, and the row counts reported are those of the parts assembled.

A token classifier (named entities) goes the same way, resumable alike: its rows get an
`entities` column, or become one row per entity (`bulk.entities`); a part then records the input
rows it covers beside the rows it holds.

An empty text (nothing but whitespace, or for a pair both texts) has nothing to classify: its
row keeps its place but gets no label and no score (null, or an empty cell), and the summary
counts such rows. A very long text is cut before it reaches the tokenizer (the tokenizer stage's
`clearpipe.inputs.cut`), so one huge cell cannot take gigabytes of memory.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from clearpipe.bulk import entities
from clearpipe.bulk.parts import PartRecord, commit, open_parts, part_name
from clearpipe.errors import InputError, where
from clearpipe.inputs import TextInput
from clearpipe.postprocess import BEST, Predictions, TopK
from clearpipe.tables.columns import PAIR_NAMES, TEXT_NAMES, pick_column, pick_optional_column
from clearpipe.tables.read import Chunk, Row, read_chunks, read_columns, table_format
from clearpipe.tables.write import PART_SUFFIX, assemble, write_part


class BulkClassifier(Protocol):
    """What bulk prediction needs of a classifier: `clearpipe.Classifier`, `lite.LiteClassifier`,
    or a zero-shot model with its labels fixed (`clearpipe.zeroshot.fixed.FixedLabels`)."""

    @property
    def source(self) -> str: ...

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
    zero_shot: dict[str, Any] | None = None  # `FixedLabels.record()`: no pair column, kept for --resume
    one_row_per_entity: bool = False  # a token classifier: one output row per entity
    aggregation_strategy: str | None = None  # a token classifier's; None: its default


@dataclass(frozen=True)
class Plan:
    """The resolved columns and formats of a job, recorded in the manifest for `--resume`."""

    input: str
    input_size: int
    input_mtime_ns: int
    output_format: str
    text_column: str
    columns: list[str]
    chunk_rows: int
    encoding: str
    model: str
    # A sequence classifier's added columns and options; None for a token classifier.
    pair_column: str | None = None
    label_column: str | None = None
    score_column: str | None = None
    top_k_column: str | None = None
    windows_column: str | None = None
    top_k: int | str | None = None
    labels_column: str | None = None  # a multi-label model's labels that apply, by their thresholds
    decided_column: str | None = None  # with a min_score: whether the best score reaches it
    min_score: float | None = None
    zero_shot: dict[str, Any] | None = None  # the candidate labels, template and multi-label switch
    entities: str | None = None  # a token classifier's output: `bulk.entities.COLUMN` or `ROWS`
    aggregation_strategy: str | None = None


@dataclass(frozen=True)
class Summary:
    rows: int  # written (with one row per entity: entities)
    resumed_rows: int  # input rows whose parts the interrupted run had written
    output: Path
    undecided: int | None = None  # rows below min_score; None without one
    empty: int = 0  # rows whose text was empty: written without label and score
    input_rows: int | None = None  # with one row per entity: the input rows they came from


@dataclass(frozen=True)
class ChunkRows:
    """What one chunk of input became: its output rows and the counts its part records."""

    rows: list[Row]
    input_rows: int
    empty: int = 0
    undecided: int = 0


Progress = Callable[[Chunk], None]


def predict_file(clf: BulkClassifier, job: PredictJob, on_chunk: Progress | None = None) -> Summary:
    """Classify every row of `job.input` into `job.output`; see the module docstring.

    >>> predict_file(clearpipe.load(), PredictJob(Path("reviews.csv"), Path("labelled.csv")))  # doctest: +SKIP
    Summary(rows=1200, resumed_rows=0, output=PosixPath('labelled.csv'))
    """
    if job.chunk_rows < 1:
        raise InputError(f"chunk size must be at least 1 row, got {job.chunk_rows}")
    plan = make_plan(clf, job)
    parts_dir = job.output.with_name(job.output.name + ".parts")
    intact = open_parts(parts_dir, asdict(plan), job.resume)
    try:
        done = _write_parts(clf, job, plan, parts_dir, intact, on_chunk)
    except InputError:
        # Bad input fails the same way on every attempt, so these parts can never be resumed;
        # an interruption (kill, Ctrl-C, crash) keeps them for --resume.
        shutil.rmtree(parts_dir, ignore_errors=True)
        raise
    records = [record for record, _ in done]
    # Exactly the parts of this input's chunks, each checked against its sha256 as it is read:
    # a stray file in the folder is never assembled, and a part that changed stops the run.
    paths = [parts_dir / r.file for r in records]
    assemble(paths, plan.columns, plan.output_format, job.output, [r.sha256 for r in records])
    shutil.rmtree(parts_dir)
    return Summary(
        rows=sum(r.rows for r in records),
        resumed_rows=sum(r.covers() for r, reused in done if reused),
        output=job.output,
        undecided=None if plan.decided_column is None else sum(r.undecided for r in records),
        empty=sum(r.empty for r in records),
        input_rows=sum(r.covers() for r in records) if plan.entities == entities.ROWS else None,
    )


def _write_parts(
    clf: BulkClassifier,
    job: PredictJob,
    plan: Plan,
    parts_dir: Path,
    intact: dict[str, PartRecord],
    on_chunk: Progress | None,
) -> list[tuple[PartRecord, bool]]:
    """Each chunk's part record, and whether it was reused from the interrupted run."""
    done = []
    for index, chunk in enumerate(read_chunks(job.input, job.chunk_rows, job.encoding, job.header)):
        old = intact.get(part_name(index, PART_SUFFIX[plan.output_format]))
        if old is not None and old.covers() == len(chunk.rows):
            done.append((old, True))
        else:
            done.append(
                (
                    _new_part(
                        clf, chunk, plan, job, parts_dir / part_name(index, PART_SUFFIX[plan.output_format])
                    ),
                    False,
                )
            )
        if on_chunk is not None:
            on_chunk(chunk)
    return done


def _new_part(clf: BulkClassifier, chunk: Chunk, plan: Plan, job: PredictJob, path: Path) -> PartRecord:
    """Classify `chunk`, write its part durably, then record it: a record always names a whole part."""
    done = predict_chunk(clf, chunk, plan, job)
    digest = write_part(done.rows, plan.columns, plan.output_format, path)
    covers = done.input_rows if plan.entities == entities.ROWS else None
    record = PartRecord(path.name, len(done.rows), digest, done.empty, done.undecided, covers)
    commit(path.parent, record)
    return record


def predict_chunk(clf: Any, chunk: Chunk, plan: Plan, job: PredictJob) -> ChunkRows:
    """The output rows of `chunk` and their counts, for a classifier or a token classifier: the
    one place `predict_file` and `bulk.ray`'s workers turn a chunk into a part's rows.

    >>> predict_chunk(clf, chunk, plan, job).rows[0]  # doctest: +SKIP
    {'id': '1', 'review': 'Great phone.', 'label': 'positive', 'score': 0.98}
    """
    if plan.entities is None:
        rows = classify_chunk(clf, chunk, plan, job)
        return ChunkRows(rows, len(chunk.rows), count_empty(rows, plan), count_undecided(rows, plan))
    texts = chunk_items(chunk, plan, job.input)
    rows = entities.entity_rows(clf, chunk, texts, plan.entities, plan.aggregation_strategy)  # type: ignore[arg-type]
    return ChunkRows(rows, len(chunk.rows), sum(1 for text in texts if is_empty(text)))


def count_undecided(records: list[Row], plan: Plan) -> int:
    """How many of `classify_chunk`'s rows are not decided (best score below the plan's min_score)."""
    column = plan.decided_column
    return 0 if column is None else sum(1 for record in records if record[column] is False)


def count_empty(records: list[Row], plan: Plan) -> int:
    """How many of `classify_chunk`'s rows had an empty text (no label, no score)."""
    return sum(1 for record in records if record[plan.label_column] is None)


def make_plan(clf: BulkClassifier, job: PredictJob) -> Plan:
    """Resolve formats and columns, refusing bad combinations before any work is done."""
    out_fmt = check_paths(job)
    found = read_columns(job.input, job.encoding, job.header)
    stat = job.input.stat()
    return plan_for(clf, job, found, out_fmt, str(job.input.resolve()), stat.st_size, stat.st_mtime_ns)


def check_paths(job: PredictJob) -> str:
    """Refuse an unknown input or output format, a .txt output or one that is the input; return
    the output's format. The CLI calls it before the model loads, `make_plan` again.

    >>> check_paths(PredictJob(Path("reviews.csv"), Path("labelled.parquet")))
    'parquet'
    """
    table_format(job.input)
    out_fmt = table_format(job.output, role="output")
    if out_fmt == "txt":
        raise InputError(
            f"{job.output}: .txt cannot hold labels and scores; write .csv, .tsv, .jsonl, .json or .parquet"
        )
    if job.output.resolve() == job.input.resolve():
        raise InputError(f"{job.output}: the output would overwrite the input; choose another file")
    return out_fmt


def plan_for(
    clf: BulkClassifier, job: PredictJob, found: list[str], out_fmt: str, input: str, size: int, mtime_ns: int
) -> Plan:
    """The plan of a job whose input has the columns `found`: the text and pair columns, the added
    ones, and what `--resume` compares. `bulk.ray` calls it too, for an input of many files.

    >>> plan_for(clf, job, ["id", "review"], "csv", "reviews.csv", 2048, 0).text_column  # doctest: +SKIP
    'review'
    """
    text = pick_column(found, job.text_column, TEXT_NAMES, "text", "--text-column", job.input)
    # What every task's plan records; each task then adds its own columns.
    shared = Plan(
        input=input,
        input_size=size,
        input_mtime_ns=mtime_ns,
        output_format=out_fmt,
        text_column=text,
        columns=list(found),
        chunk_rows=job.chunk_rows,
        encoding=job.encoding,
        model=clf.source,
    )
    if entities.is_entities(clf):
        return _entity_plan(shared, job)
    return _classifier_plan(shared, clf, job)


def _classifier_plan(shared: Plan, clf: BulkClassifier, job: PredictJob) -> Plan:
    """A sequence classifier's plan: the pair column, then label, score and the optional columns."""
    found = shared.columns
    # Zero-shot compares one text with the labels: a column that looks like a pair stays a column.
    pair = (
        None
        if job.zero_shot is not None
        else pick_optional_column(
            [c for c in found if c != shared.text_column],
            job.pair_column,
            PAIR_NAMES,
            "--text-pair-column",
            job.input,
        )
    )
    added = _added_columns(
        found,
        top_k=job.top_k is not BEST,
        windows=clf.long_text == "chunk",
        labels=clf.thresholds is not None,
        decided=job.min_score is not None,
    )
    return replace(
        shared,
        pair_column=pair,
        columns=[*found, *(c for c in added.values() if c)],
        label_column=added["label"],
        score_column=added["score"],
        top_k_column=added["top_k"],
        windows_column=added["windows"],
        top_k="best" if job.top_k is BEST else job.top_k,
        labels_column=added["labels"],
        decided_column=added["decided"],
        min_score=job.min_score,
        zero_shot=job.zero_shot,
    )


def _entity_plan(shared: Plan, job: PredictJob) -> Plan:
    """A token classifier's plan: the text column, then `entities` or one row per entity."""
    added = entities.check_clash(shared.columns, job.one_row_per_entity, job.aggregation_strategy, job.input)
    return replace(
        shared,
        columns=[*shared.columns, *added],
        entities=entities.ROWS if job.one_row_per_entity else entities.COLUMN,
        aggregation_strategy=job.aggregation_strategy,
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


def classify_chunk(clf: BulkClassifier, chunk: Chunk, plan: Plan, job: PredictJob) -> list[Row]:
    """The rows of `chunk` with the plan's added columns (label, score, ...): the one place that
    turns predictions into output rows, for `predict_file` and for `bulk.ray`'s workers. A row
    whose text is empty gets None in every added column.

    >>> classify_chunk(clf, chunk, plan, job)[0]  # doctest: +SKIP
    {'id': '1', 'review': 'Great phone.', 'label': 'positive', 'score': 0.98}
    """
    items = chunk_items(chunk, plan, job.input)
    filled = [i for i, item in enumerate(items) if not is_empty(item)]
    added = _added_values(clf, [items[i] for i in filled], plan, job) if filled else []
    values = dict(zip(filled, added, strict=True))
    blank = dict.fromkeys(added_columns(plan))
    return [{**row, **values.get(i, blank)} for i, row in enumerate(chunk.rows)]


def _added_values(clf: BulkClassifier, items: list[TextInput], plan: Plan, job: PredictJob) -> list[Row]:
    """The added columns' values for each of `items`, in order."""
    predictions = clf.predict_items(items)
    best = predictions.to_output(min_score=plan.min_score)
    ranked = None if plan.top_k_column is None else predictions.to_output(job.top_k, plan.min_score)
    applying = _applying(predictions) if plan.labels_column is not None else None
    out = []
    for i, one in enumerate(best):
        values = {plan.label_column: one["label"], plan.score_column: one["score"]}
        if ranked is not None:
            values[plan.top_k_column] = ranked[i]
        if plan.windows_column is not None:
            values[plan.windows_column] = one["windows"]
        if applying is not None:
            values[plan.labels_column] = applying[i]
        if plan.decided_column is not None:
            values[plan.decided_column] = one["decided"]
        out.append(values)
    return out


def added_columns(plan: Plan) -> list[str]:
    """The columns predictions add to each row, in output order.

    >>> added_columns(plan)  # doctest: +SKIP
    ['label', 'score']
    """
    names = [
        plan.label_column,
        plan.score_column,
        plan.top_k_column,
        plan.windows_column,
        plan.labels_column,
        plan.decided_column,
    ]
    return [name for name in names if name is not None]


def is_empty(item: TextInput) -> bool:
    """Whether an input has nothing to classify: blank text, or a pair of blank texts.

    >>> is_empty("  "), is_empty(("", "a film")), is_empty("a film")
    (True, False, False)
    """
    texts = (item,) if isinstance(item, str) else item
    return not any(text.strip() for text in texts)


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
