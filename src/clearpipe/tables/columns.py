"""Which column of a table holds the text, the text pair or the label.

Shared by `clearpipe predict` (streamed tables) and `clearpipe train` / `evaluate` (datasets):
an explicit flag wins; otherwise exactly one column with a conventional name must be present.
"""

from __future__ import annotations

from collections.abc import Sequence

from clearpipe.errors import InputError

TEXT_NAMES = (
    "text",
    "sentence",
    "review",
    "content",
    "body",
    "document",
    "comment",
    "message",
    "tweet",
    "utterance",
    "query",
    "question",
    "premise",
    "sentence1",
    "text_a",
)
PAIR_NAMES = ("text_pair", "hypothesis", "sentence2", "text_b")
LABEL_NAMES = ("label", "labels", "target", "category", "class", "sentiment", "topic", "y")


def pick_column(
    found: Sequence[str],
    wanted: str | None,
    candidates: Sequence[str],
    role: str,
    flag: str,
    file: object,
) -> str:
    """Return the column to use for `role` ("text", "label", ...), or raise `InputError`.

    `wanted` is the user's explicit choice (e.g. from `--text-column`); when absent, the single
    column whose lower-cased name is in `candidates` is taken.

    >>> pick_column(["id", "Sentence", "label"], None, TEXT_NAMES, "text", "--text-column", "a.csv")
    'Sentence'
    """
    if wanted is not None:
        if wanted not in found:
            raise InputError(f'{file}: no column "{wanted}" ({flag}); columns found: {_list(found)}')
        return wanted
    matches = [name for name in found if name.strip().lower() in candidates]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        if looks_like_data(found):
            raise InputError(
                f"{file}: the file seems to have no header row: its first row ({_list(found, 60)}) "
                f"looks like data, not column names. Add a header line (e.g. label<TAB>text), or pass "
                f"--no-header and name the columns by number, 1 for the first (e.g. {flag} 2)"
            )
        raise InputError(
            f"{file}: cannot tell which column holds the {role}; columns found: {_list(found)}. "
            f"Name it with {flag}"
        )
    raise InputError(
        f"{file}: several columns could hold the {role} ({_list(matches)}); name one with {flag}"
    )


def pick_optional_column(
    found: Sequence[str], wanted: str | None, candidates: Sequence[str], flag: str, file: object
) -> str | None:
    """Like `pick_column`, but absence is fine: returns None when no candidate is present.

    >>> pick_optional_column(["premise", "hypothesis"], None, PAIR_NAMES, "--text-pair-column", "a.csv")
    'hypothesis'
    """
    if wanted is None and not any(name.strip().lower() in candidates for name in found):
        return None
    return pick_column(found, wanted, candidates, "text pair", flag, file)


def looks_like_data(names: Sequence[str]) -> bool:
    """True when a table's "column names" read like a data row: a number, or a sentence.

    A headerless `label<TAB>text` file (as many public datasets ship) has, as its first row, a
    label such as "0" or "3" and a text of several words; real column names are neither.

    >>> looks_like_data(["1", "it 's a charming and often affecting journey ."])
    True
    >>> looks_like_data(["id", "review text", "label"])
    False
    """
    numeric = any(name.strip().lstrip("+-").replace(".", "", 1).isdigit() for name in names)
    sentence = any(len(name.split()) >= 4 or len(name) > 40 for name in names)
    return numeric or sentence


def _list(names: Sequence[str], width: int | None = None) -> str:
    cut = [n if width is None or len(n) <= width else n[: width - 3] + "..." for n in names]
    return ", ".join(f'"{n}"' for n in cut) or "none"
