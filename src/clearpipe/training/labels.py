"""Label cells -> label keys -> ids: integers by value, names alphabetically, or the order the
user gives with `--label-names`; lists or delimited strings for multi-label data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from clearpipe.errors import InputError, where


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


def label_key(value: object, multi_label: bool, sep: str, file: object, row: int, column: str):
    """A label cell as a hashable key (int or str), a tuple of keys when multi-label, or None if missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if multi_label:
        parts = value if isinstance(value, list) else str(value).split(sep)
        keys = tuple(label_key(p, False, sep, file, row, column) for p in parts)
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


def integer_keys(keys: Sequence[object]) -> list[object]:
    """The label keys as integers when every one is an integer or a string of digits, else as given.

    A label column is read as integers, unless one cell is blank: then every cell is read as a
    string ("0", "1", ""). The labels mean the same either way, so they get the same keys.

    >>> integer_keys(["0", "1", 1, ("1", "2")])
    [0, 1, 1, (1, 2)]
    >>> integer_keys(["0", "positive"])
    ['0', 'positive']
    """
    flat = [k for key in keys for k in as_tuple(key)]
    if not flat or not all(isinstance(k, int) or _is_integer(k) for k in flat):
        return list(keys)
    return [tuple(int(k) for k in key) if isinstance(key, tuple) else int(key) for key in keys]


def _is_integer(key: object) -> bool:
    # "01" stays a name: as an integer it would merge with "1".
    return isinstance(key, str) and key.lstrip("-").isdigit() and str(int(key)) == key


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
        row = next(r for r, key in zip(rows, keys, strict=True) if unknown[0] in as_tuple(key))
        raise InputError(
            f"{where(file, row=row)}: unknown label {unknown[0]!r}; --label-names has {', '.join(names)}"
        )
    return LabelSpace(names, multi_label)


def as_tuple(key: object) -> tuple:
    return key if isinstance(key, tuple) else (key,)


def _has_kind(key: object, kind: type) -> bool:
    return any(type(k) is kind for k in as_tuple(key))


def ids_of(key: object, space: LabelSpace, lookup: dict) -> int | list[int] | None:
    if space.multi_label:
        ids = [lookup.get(k) for k in key]
        return None if any(i is None for i in ids) else sorted(set(ids))
    return lookup.get(key)


def label_lookup(space: LabelSpace, int_labels: bool) -> dict:
    """Label value -> id: integer labels are their own names ("0", "1") or ids into named labels."""
    if int_labels and not all(n.lstrip("-").isdigit() for n in space.names):
        return {i: i for i in range(len(space.names))}  # integer ids named by --label-names
    if int_labels:
        return {int(n): i for i, n in enumerate(space.names)}
    return {n: i for i, n in enumerate(space.names)}
