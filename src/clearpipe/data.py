"""Training data: read a table through `datasets`, pick its columns, map labels to ids, clean, split.

Files: `.csv`, `.tsv` (tab-separated, no quoting), `.json` (a list of records), `.jsonl`, `.parquet`,
or a folder written by `datasets.Dataset.save_to_disk`. Row numbers in messages and reports count
data rows from 1, the header not included.

`read_training_data` returns a `TrainingData` whose splits hold plain texts and label ids, and a
`DataReport` that says what was read, what was dropped and why.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from clearpipe.columns import LABEL_NAMES, PAIR_NAMES, TEXT_NAMES, pick_column, pick_optional_column
from clearpipe.errors import InputError, where
from clearpipe.inputs import TextInput

SUFFIXES = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
IMBALANCE_RATIO = 5.0
"""The report recommends `--class-weights auto` when the largest class is this many times the smallest."""


@dataclass(frozen=True)
class DataOptions:
    """How to read the tables: column overrides, label names and the multi-label switch."""

    text_column: str | None = None
    pair_column: str | None = None
    label_column: str | None = None
    label_names: Sequence[str] | None = None
    multi_label: bool | None = None  # None: a list in a label cell switches it on
    label_sep: str = ","
    validation_fraction: float = 0.1
    seed: int = 42


@dataclass(frozen=True)
class Columns:
    text: str
    pair: str | None
    label: str


@dataclass(frozen=True)
class LabelSpace:
    """Label names in id order; `multi_label` means each row holds a set of them."""

    names: list[str]
    multi_label: bool

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}


@dataclass
class Split:
    """One split's usable rows: inputs, label ids (a list of ids per row when multi-label), row numbers."""

    name: str
    source: str
    items: list[TextInput]
    labels: list[int] | list[list[int]]
    rows: list[int]

    def __len__(self) -> int:
        return len(self.items)

    def subset(self, indices: Sequence[int], name: str) -> Split:
        return Split(
            name,
            self.source,
            [self.items[i] for i in indices],
            [self.labels[i] for i in indices],
            [self.rows[i] for i in indices],
        )


@dataclass
class SplitReport:
    """What happened to one file: rows read, rows kept, rows dropped by reason with their first row numbers."""

    name: str
    source: str
    rows_read: int
    rows_kept: int = 0
    dropped: dict[str, list[int]] = field(default_factory=dict)
    label_counts: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, row: int) -> None:
        self.dropped.setdefault(reason, []).append(row)


@dataclass
class DataReport:
    """The short report printed before training and saved in `trace.json`."""

    columns: Columns
    labels: LabelSpace
    splits: list[SplitReport]
    overlap: dict[str, int]
    validation_from_split: bool
    imbalance_ratio: float
    column_names: list[str] = field(default_factory=list)

    @property
    def imbalanced(self) -> bool:
        return self.imbalance_ratio >= IMBALANCE_RATIO

    def to_dict(self) -> dict:
        return {
            "columns": {
                "text": self.columns.text,
                "text_pair": self.columns.pair,
                "label": self.columns.label,
            },
            "columns_found": self.column_names,
            "labels": self.labels.names,
            "multi_label": self.labels.multi_label,
            "validation": "stratified split of the training data" if self.validation_from_split else "file",
            "imbalance_ratio": self.imbalance_ratio,
            "splits": [
                {
                    "name": s.name,
                    "source": s.source,
                    "rows_read": s.rows_read,
                    "rows_kept": s.rows_kept,
                    "dropped": {reason: len(rows) for reason, rows in s.dropped.items()},
                    "first_dropped_rows": {reason: rows[:5] for reason, rows in s.dropped.items()},
                    "label_counts": s.label_counts,
                }
                for s in self.splits
            ],
            "texts_also_in_training": self.overlap,
        }


@dataclass
class TrainingData:
    train: Split
    validation: Split
    test: Split | None
    labels: LabelSpace
    report: DataReport


# Reading -----------------------------------------------------------------------------------------
def read_table(path: str | Path):
    """Read a data file or `save_to_disk` folder into a `datasets.Dataset`, or raise `InputError`.

    >>> read_table("reviews.csv").column_names  # doctest: +SKIP
    ['review', 'label']
    """
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    path = Path(path)
    if path.is_dir():
        return _read_folder(path)
    if not path.is_file():
        raise InputError(f"no such data file: {path}")
    builder = SUFFIXES.get(path.suffix.lower())
    if builder is None:
        raise InputError(
            f"{path}: unknown data format {path.suffix!r}; use .csv, .tsv, .json, .jsonl, .parquet "
            "or a datasets save_to_disk folder"
        )
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty")
    options: dict = {}
    if builder == "csv":
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
        _check_ragged(path, delimiter, quoting)
        options = {"delimiter": delimiter, "quoting": quoting, "keep_default_na": False}
    try:
        table = datasets.load_dataset(builder, data_files=str(path), split="train", **options)
    except Exception as exc:  # datasets wraps parser errors in its own types
        raise InputError(f"{path}: cannot read as {path.suffix[1:]}: {_root_cause(exc)}") from None
    if len(table) == 0:
        raise InputError(f"{path}: the file has no data rows")
    return table


def _read_folder(path: Path):
    import datasets

    try:
        table = datasets.load_from_disk(str(path))
    except FileNotFoundError:
        raise InputError(f"{path} is a folder but not one written by datasets' save_to_disk") from None
    if isinstance(table, datasets.DatasetDict):
        if "train" not in table:
            raise InputError(f"{path}: a DatasetDict without a 'train' split ({', '.join(table)})")
        table = table["train"]
    return table


def _check_ragged(path: Path, delimiter: str, quoting: int) -> None:
    # pandas reports ragged rows by line number, or silently pads short ones: check first.
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=delimiter, quoting=quoting)
        header = next(reader, None)
        if not header:
            raise InputError(f"{path}: the file is empty")
        for row_number, row in enumerate(reader, start=1):
            if row and len(row) != len(header):
                raise InputError(
                    f"{where(path, row=row_number)}: has {len(row)} fields but the header has "
                    f"{len(header)} ({', '.join(header)})"
                )


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# Columns and labels -------------------------------------------------------------------------------
def pick_columns(found: Sequence[str], options: DataOptions, file: object) -> Columns:
    """Choose the text, pair and label columns of a table (see `clearpipe.columns`)."""
    text = pick_column(found, options.text_column, TEXT_NAMES, "text", "--text-column", file)
    pair = pick_optional_column(found, options.pair_column, PAIR_NAMES, "--text-pair-column", file)
    label = pick_column(found, options.label_column, LABEL_NAMES, "label", "--label-column", file)
    return Columns(text, pair, label)


def _label_key(value: object, multi_label: bool, sep: str, file: object, row: int, column: str):
    """A label cell as a hashable key (int or str), a tuple of keys when multi-label, or None if missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if multi_label:
        parts = value if isinstance(value, list) else str(value).split(sep)
        keys = tuple(_label_key(p, False, sep, file, row, column) for p in parts)
        keys = tuple(k for k in keys if k is not None and k != "")
        return keys or None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise InputError(
            f"{where(file, row=row, column=column)}: label {value} is not a class: labels are names or "
            "integer ids"
        )
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        raise InputError(
            f"{where(file, row=row, column=column)}: a list of labels in a single-label column; "
            "pass --multi-label"
        )
    raise InputError(f"{where(file, row=row, column=column)}: unsupported label {value!r}")


def _is_multi_label(values: Sequence[object], options: DataOptions) -> bool:
    if options.multi_label is not None:
        return options.multi_label
    return any(isinstance(v, list) for v in values)


def build_label_space(
    keys: Sequence[object], multi_label: bool, names: Sequence[str] | None, file: object, rows: Sequence[int]
) -> LabelSpace:
    """Map the training labels to ids in a stable order: integers by value, names alphabetically.

    `names` (from `--label-names`) fixes the order of string labels, or names integer ids 0..K-1.
    """
    flat = [k for key in keys for k in (key if multi_label else (key,))]
    kinds = {type(k) for k in flat}
    if len(kinds) > 1:
        first = {
            kind: next(r for r, key in zip(rows, keys, strict=True) if _has_kind(key, kind)) for kind in kinds
        }
        raise InputError(
            f"{file}: mixed label types: row {first[int]} has an integer label and row {first[str]} "
            "a string label; use names or integer ids, not both"
        )
    distinct = sorted(set(flat))
    if not distinct:
        raise InputError(f"{file}: no row has a label")
    if names is None:
        return LabelSpace([str(k) for k in distinct], multi_label)
    names = [str(n) for n in names]
    if kinds == {int}:
        bad = [k for k in distinct if not 0 <= k < len(names)]
        if bad:
            raise InputError(f"{file}: label id {bad[0]} has no name in --label-names ({', '.join(names)})")
        return LabelSpace(names, multi_label)
    unknown = [k for k in distinct if k not in names]
    if unknown:
        row = next(r for r, key in zip(rows, keys, strict=True) if unknown[0] in _as_tuple(key))
        raise InputError(
            f"{where(file, row=row)}: unknown label {unknown[0]!r}; --label-names has {', '.join(names)}"
        )
    return LabelSpace(names, multi_label)


def _as_tuple(key: object) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def _has_kind(key: object, kind: type) -> bool:
    return any(type(k) is kind for k in _as_tuple(key))


def _ids_of(key: object, space: LabelSpace, lookup: dict) -> int | list[int] | None:
    if space.multi_label:
        ids = [lookup.get(k) for k in key]
        return None if any(i is None for i in ids) else sorted(set(ids))
    return lookup.get(key)


def _lookup(space: LabelSpace, int_labels: bool) -> dict:
    """Label value -> id: integer labels are their own names ("0", "1") or ids into named labels."""
    if int_labels and not all(n.lstrip("-").isdigit() for n in space.names):
        return {i: i for i in range(len(space.names))}  # integer ids named by --label-names
    if int_labels:
        return {int(n): i for i, n in enumerate(space.names)}
    return {n: i for i, n in enumerate(space.names)}


# Splits -----------------------------------------------------------------------------------------
@dataclass
class _Raw:
    name: str
    source: str
    items: list[TextInput]
    keys: list[object]
    rows: list[int]
    report: SplitReport


def _read_raw(path: str | Path, columns: Columns | None, options: DataOptions) -> tuple:
    table = read_table(path)
    found = list(table.column_names)
    if columns is None:
        columns = pick_columns(found, options, path)
    else:
        for column in (columns.text, columns.pair, columns.label):
            if column is not None and column not in found:
                raise InputError(
                    f'{path}: no column "{column}" (as in the training data); columns found: {found}'
                )
    return table, columns, found


def _clean(table, columns: Columns, multi_label: bool, options: DataOptions, name: str, source: str) -> _Raw:
    texts = table[columns.text]
    pairs = table[columns.pair] if columns.pair else None
    labels = table[columns.label]
    report = SplitReport(name, source, rows_read=len(texts))
    raw = _Raw(name, source, [], [], [], report)
    for i, (text, value) in enumerate(zip(texts, labels, strict=True)):
        row = i + 1
        pair = pairs[i] if pairs is not None else None
        if not _has_text(text) or (pairs is not None and not _has_text(pair)):
            report.drop("empty text", row)
            continue
        key = _label_key(value, multi_label, options.label_sep, source, row, columns.label)
        if key is None:
            report.drop("missing label", row)
            continue
        raw.items.append(str(text) if pairs is None else (str(text), str(pair)))
        raw.keys.append(key)
        raw.rows.append(row)
    return raw


def _has_text(value: object) -> bool:
    return value is not None and str(value).strip() != ""


def _to_split(raw: _Raw, space: LabelSpace, int_labels: bool) -> Split:
    lookup = _lookup(space, int_labels)
    split = Split(raw.name, raw.source, [], [], [])
    for item, key, row in zip(raw.items, raw.keys, raw.rows, strict=True):
        if int_labels and not space.multi_label and isinstance(key, str) and key.lstrip("-").isdigit():
            key = int(key)
        ids = _ids_of(key, space, lookup)
        if ids is None:
            raw.report.drop("unknown label", row)
            continue
        split.items.append(item)
        split.labels.append(ids)
        split.rows.append(row)
    return split


def _count(split: Split, space: LabelSpace, report: SplitReport) -> None:
    report.rows_kept = len(split)
    counts: Counter = Counter()
    for ids in split.labels:
        counts.update(ids if space.multi_label else [ids])
    report.label_counts = {space.names[i]: counts.get(i, 0) for i in range(len(space.names))}


def stratified_split(split: Split, fraction: float, seed: int, multi_label: bool) -> tuple[Split, Split]:
    """Hold out `fraction` of the rows, stratified by label when every class has two rows or more."""
    from sklearn.model_selection import train_test_split

    indices = list(range(len(split)))
    counts = Counter(split.labels) if not multi_label else Counter()
    stratify = split.labels if counts and min(counts.values()) >= 2 else None
    n_held = max(1, round(len(indices) * fraction))
    if stratify is not None and n_held < len(counts):
        stratify = None
    if len(indices) < 2:
        raise InputError(f"{split.source}: too few rows to hold out a validation set; pass --validation")
    keep, held = train_test_split(indices, test_size=n_held, random_state=seed, stratify=stratify)
    return split.subset(sorted(keep), "train"), split.subset(sorted(held), "validation")


def read_training_data(
    train: str | Path,
    validation: str | Path | None = None,
    test: str | Path | None = None,
    options: DataOptions | None = None,
) -> TrainingData:
    """Read, clean and split the data for `clearpipe train`; raises `InputError` on malformed files.

    >>> data = read_training_data("reviews.csv", options=DataOptions(seed=1))  # doctest: +SKIP
    >>> data.labels.names, len(data.train), len(data.validation)  # doctest: +SKIP
    (['negative', 'positive'], 900, 100)
    """
    options = options or DataOptions()
    table, columns, found = _read_raw(train, None, options)
    multi_label = _is_multi_label(table[columns.label], options)
    raw_train = _clean(table, columns, multi_label, options, "train", str(train))
    space = build_label_space(raw_train.keys, multi_label, options.label_names, train, raw_train.rows)
    int_labels = any(isinstance(k, int) for key in raw_train.keys for k in _as_tuple(key))
    train_split = _to_split(raw_train, space, int_labels)
    reports = [raw_train.report]
    validation_split = None
    others: list[Split] = []
    for name, path in (("validation", validation), ("test", test)):
        if path is None:
            continue
        other_table, _, _ = _read_raw(path, columns, options)
        raw = _clean(other_table, columns, multi_label, options, name, str(path))
        split = _to_split(raw, space, int_labels)
        if len(split) == 0:
            raise InputError(f"{path}: no usable rows ({_dropped_summary(raw.report)})")
        reports.append(raw.report)
        others.append(split)
        if name == "validation":
            validation_split = split
    test_split = next((s for s in others if s.name == "test"), None)
    from_split = validation_split is None
    if from_split:
        train_split, validation_split = stratified_split(
            train_split, options.validation_fraction, options.seed, multi_label
        )
        reports.insert(1, SplitReport("validation", f"{options.validation_fraction:.0%} of {train}", 0))
        reports[1].rows_read = len(validation_split)
        reports[0].rows_kept = len(train_split)
    if len(train_split) == 0:
        raise InputError(f"{train}: no usable rows ({_dropped_summary(raw_train.report)})")
    by_name = {r.name: r for r in reports}
    for split in (train_split, validation_split, test_split):
        if split is not None:
            _count(split, space, by_name[split.name])
    report = DataReport(
        columns=columns,
        labels=space,
        splits=reports,
        overlap=_overlap(train_split, [validation_split] + ([test_split] if test_split else [])),
        validation_from_split=from_split,
        imbalance_ratio=_imbalance(by_name["train"].label_counts),
        column_names=found,
    )
    return TrainingData(train_split, validation_split, test_split, space, report)


def _dropped_summary(report: SplitReport) -> str:
    return ", ".join(f"{len(rows)} {reason}" for reason, rows in report.dropped.items()) or "no rows"


def _overlap(train: Split, others: list[Split]) -> dict[str, int]:
    seen = {_norm(item) for item in train.items}
    return {s.name: sum(_norm(item) in seen for item in s.items) for s in others}


def _norm(item: TextInput) -> TextInput:
    return item.strip().lower() if isinstance(item, str) else tuple(t.strip().lower() for t in item)


def _imbalance(counts: dict[str, int]) -> float:
    present = [c for c in counts.values() if c > 0]
    return round(max(present) / min(present), 2) if present else 1.0


def read_evaluation_data(
    path: str | Path, labels: Sequence[str], multi_label: bool, options: DataOptions | None = None
) -> tuple[Split, SplitReport]:
    """Read a labelled file for `clearpipe evaluate`, mapping its labels onto a model's label names.

    Integer labels are taken as label ids; rows with labels the model does not know are dropped
    and counted in the returned report.
    """
    options = options or DataOptions()
    table, columns, _ = _read_raw(path, None, options)
    raw = _clean(table, columns, multi_label, options, "test", str(path))
    space = LabelSpace(list(labels), multi_label)
    int_labels = all(isinstance(k, int) for key in raw.keys for k in _as_tuple(key))
    lookup = _lookup(space, int_labels)
    split = Split("test", str(path), [], [], [])
    for item, key, row in zip(raw.items, raw.keys, raw.rows, strict=True):
        ids = _ids_of(key if int_labels else _strs(key), space, lookup)
        if ids is None:
            raw.report.drop("unknown label", row)
            continue
        split.items.append(item)
        split.labels.append(ids)
        split.rows.append(row)
    if len(split) == 0:
        raise InputError(
            f"{path}: no row has a label the model knows ({', '.join(labels)}); {_dropped_summary(raw.report)}"
        )
    _count(split, space, raw.report)
    return split, raw.report


def _strs(key: object) -> object:
    return tuple(str(k) for k in key) if isinstance(key, tuple) else str(key)
