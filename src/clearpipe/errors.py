"""Errors a user can cause and fix. The CLI prints their message on one line and exits 2.

Anything that is not a `ClearpipeError` is a bug in clearpipe and keeps its traceback.
"""

from __future__ import annotations


class ClearpipeError(Exception):
    """A mistake in what the user gave us: the message names the problem and where it is."""


class InputError(ClearpipeError, ValueError):
    """Bad texts, files, columns or options."""


class CheckpointError(ClearpipeError, OSError):
    """A model folder or hub id that cannot be loaded as a sequence classifier."""


def where(
    file: object | None = None,
    row: int | None = None,
    column: str | None = None,
    field: str | None = None,
) -> str:
    """Format a location as `file, row 3, column "text"` for error messages.

    >>> where("data.csv", row=3, column="text")
    'data.csv, row 3, column "text"'
    """
    parts = []
    if file is not None:
        parts.append(str(file))
    if row is not None:
        parts.append(f"row {row}")
    if column is not None:
        parts.append(f'column "{column}"')
    if field is not None:
        parts.append(f'field "{field}"')
    return ", ".join(parts)
