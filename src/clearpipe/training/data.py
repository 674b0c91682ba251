"""Training data: read tables (`clearpipe.training.dataset_files`), pick their columns, map labels to ids
(`clearpipe.training.labels`), drop unusable rows, and split off validation data.

Row numbers in messages and reports count
data rows from 1, the header not included.

`read_training_data` returns a `TrainingData` whose splits hold plain texts and label ids, and a
`DataReport` that says what was read, what was dropped and why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearpipe.errors import InputError
from clearpipe.inputs import TextInput
from clearpipe.tables.columns import LABEL_NAMES, PAIR_NAMES, TEXT_NAMES, pick_column, pick_optional_column
from clearpipe.training.dataset_files import read_table
from clearpipe.training.labels import (
    LabelSpace,
    as_tuple,
    build_label_space,
    ids_of,
    integer_keys,
    label_key,
    label_lookup,
)

IMBALANCE_RATIO = 5.0
"""The report recommends `--class-weights auto` when the largest class is this many times the smallest."""
FEW_ROWS = 8
"""The report warns about a class with fewer training rows than this: too few to learn it reliably
(a warning only; few-shot training on such data is legitimate)."""


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
    header: bool = True  # False: CSV/TSV files start with data, columns named "1", "2", ...
    encoding: str = "utf-8"  # of CSV, TSV and JSON files


@dataclass(frozen=True)
class Columns:
    text: str
    pair: str | None
    label: str


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

    @property
    def few_rows(self) -> dict[str, int]:
        """The classes with fewer than `FEW_ROWS` labelled rows in the training file (the 10% split
        off for validation counted too: few-shot training gives it back), and their counts (a warning).

        >>> report.few_rows  # doctest: +SKIP
        {'Sci/Tech': 3}
        """
        names = ("train", "validation") if self.validation_from_split else ("train",)
        counts: dict[str, int] = {}
        for split in (s for s in self.splits if s.name in names):
            for name, n in split.label_counts.items():
                counts[name] = counts.get(name, 0) + n
        return {name: n for name, n in counts.items() if n < FEW_ROWS}

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
            "classes_with_few_rows": self.few_rows,
            "warnings": self.warnings(),
        }

    def warnings(self) -> list[str]:
        """What the printed report warns about, one sentence each (training goes on regardless)."""
        found = [f"{n} {name} texts also occur in the training data" for name, n in self.overlap.items() if n]
        if self.imbalanced:
            found.append(
                f"the largest class is {self.imbalance_ratio:.1f}x the smallest; consider --class-weights auto"
            )
        if self.few_rows:
            few = ", ".join(f"{name} ({n})" for name, n in self.few_rows.items())
            found.append(
                f"classes with fewer than {FEW_ROWS} labelled rows: {few}; their scores will be unreliable, "
                "add rows, or try zero-shot (`clearpipe predict --labels`)"
            )
        return found


@dataclass
class TrainingData:
    train: Split
    validation: Split
    test: Split | None
    labels: LabelSpace
    report: DataReport


# Columns and labels -------------------------------------------------------------------------------
def pick_columns(found: Sequence[str], options: DataOptions, file: object) -> Columns:
    """Choose the text, pair and label columns of a table (see `clearpipe.tables.columns`)."""
    text = pick_column(found, options.text_column, TEXT_NAMES, "text", "--text-column", file)
    pair = pick_optional_column(found, options.pair_column, PAIR_NAMES, "--text-pair-column", file)
    label = pick_column(found, options.label_column, LABEL_NAMES, "label", "--label-column", file)
    return Columns(text, pair, label)


def _is_multi_label(values: Sequence[object], options: DataOptions) -> bool:
    if options.multi_label is not None:
        return options.multi_label
    return any(isinstance(v, list) for v in values)


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
    table = read_table(path, options.header, options.encoding)
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
        key = label_key(value, multi_label, options.label_sep, source, row, columns.label)
        if key is None:
            report.drop("missing label", row)
            continue
        raw.items.append(str(text) if pairs is None else (str(text), str(pair)))
        raw.keys.append(key)
        raw.rows.append(row)
    raw.keys = integer_keys(raw.keys)
    return raw


def _require_rows(raw: _Raw, columns: Columns) -> None:
    """Refuse a table none of whose rows can be used, saying why (all empty texts, say)."""
    if raw.keys:
        return
    dropped = raw.report.dropped
    if list(dropped) == ["empty text"]:
        where_ = f'column "{columns.text}"' + (f' or "{columns.pair}"' if columns.pair else "")
        raise InputError(f"{raw.source}: every row's text is empty ({where_})")
    raise InputError(f"{raw.source}: no usable rows ({_dropped_summary(raw.report)})")


def _require_classes(raw: _Raw, columns: Columns) -> None:
    """Refuse training data with a single class: there is nothing to tell apart."""
    present = {k for key in raw.keys for k in as_tuple(key)}
    if len(present) == 1:
        raise InputError(
            f'{raw.source}: every row has the label "{next(iter(present))}" (column "{columns.label}"); '
            "a classifier learns from two classes or more"
        )


def _has_text(value: object) -> bool:
    return value is not None and str(value).strip() != ""


def _to_split(raw: _Raw, space: LabelSpace, int_labels: bool) -> Split:
    def key_of(key: Any) -> Any:
        if int_labels and not space.multi_label and isinstance(key, str) and key.lstrip("-").isdigit():
            return int(key)
        return key

    return _known_labels(raw, Split(raw.name, raw.source, [], [], []), space, int_labels, key_of)


def _known_labels(
    raw: _Raw, split: Split, space: LabelSpace, int_labels: bool, key_of: Callable[[Any], Any]
) -> Split:
    """Fill `split` with the rows of `raw` whose label the label space has; report the others."""
    lookup = label_lookup(space, int_labels)
    for item, key, row in zip(raw.items, raw.keys, raw.rows, strict=True):
        ids = ids_of(key_of(key), space, lookup)
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
    _require_rows(raw_train, columns)
    _require_classes(raw_train, columns)
    space = build_label_space(raw_train.keys, multi_label, options.label_names, train, raw_train.rows)
    int_labels = any(isinstance(k, int) for key in raw_train.keys for k in as_tuple(key))
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
    _require_rows(raw, columns)
    space = LabelSpace(list(labels), multi_label)
    int_labels = all(isinstance(k, int) for key in raw.keys for k in as_tuple(key))
    split = _known_labels(
        raw,
        Split("test", str(path), [], [], []),
        space,
        int_labels,
        lambda key: key if int_labels else _strs(key),
    )
    if len(split) == 0:
        raise InputError(
            f"{path}: no row has a label the model knows ({', '.join(labels)}); {_dropped_summary(raw.report)}"
        )
    _count(split, space, raw.report)
    return split, raw.report


def _strs(key: object) -> object:
    return tuple(str(k) for k in key) if isinstance(key, tuple) else str(key)
