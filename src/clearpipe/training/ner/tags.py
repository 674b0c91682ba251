"""Tag schemes and entity chunks: IOB1, IOB2 and BIOES recognised, everything converted to IOB2,
and chunks read from IOB2 tags the way conlleval (and seqeval's default mode) reads them.

A tag is `O` or `PREFIX-TYPE` with PREFIX one of B, I, E, S. Training data is checked here; a
model's predictions are never refused, only read leniently by `chunks`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from clearpipe.errors import InputError

OUTSIDE = "O"
PREFIXES = ("B", "I", "E", "S")


@dataclass(frozen=True)
class Chunk:
    """One entity: its type and the words [start, end) it covers."""

    type: str
    start: int
    end: int


def split_tag(tag: str, where: str) -> tuple[str, str]:
    """("B", "PER") for "B-PER", ("O", "") for "O"; anything else is refused naming `where`.

    >>> split_tag("I-ORG", "train.txt, line 3")
    ('I', 'ORG')
    """
    parts = _parts(tag)
    if parts is None:
        raise InputError(
            f"{where}: tag {tag!r} is not O or B-/I-/E-/S- followed by a type (IOB1, IOB2 or BIOES)"
        )
    return parts


def _parts(tag: str) -> tuple[str, str] | None:
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, dash, kind = tag.partition("-")
    return (prefix, kind) if dash and prefix in PREFIXES and kind else None


def detect_scheme(sentences: Sequence[Sequence[str]]) -> str:
    """ "BIOES" when any tag starts with E- or S-, "IOB1" when an entity starts with I-, else "IOB2".

    >>> detect_scheme([["I-PER", "O"], ["B-LOC"]])
    'IOB1'
    """
    scheme = "IOB2"
    for tags in sentences:
        before = OUTSIDE
        for tag in tags:
            if tag[:2] in ("E-", "S-"):
                return "BIOES"
            if tag.startswith("I-") and before[2:] != tag[2:]:
                scheme = "IOB1"
            before = tag
    return scheme


def to_iob2(tags: Sequence[str], scheme: str, where: Callable[[int], str]) -> list[str]:
    """`tags` of one sentence in IOB2; `where(i)` names the place of tag i in error messages
    (a function, so that a large file builds no message it does not need).

    IOB1 and IOB2 are read as conlleval reads them (an I- that follows another type starts an
    entity), so both convert the same way. BIOES is checked strictly, because an `I-` after `O`
    there means a broken file rather than another convention.

    >>> to_iob2(["S-PER", "B-ORG", "E-ORG"], "BIOES", lambda i: f"line {i + 1}")
    ['B-PER', 'B-ORG', 'I-ORG']
    """
    parts = []
    for i, tag in enumerate(tags):
        part = _parts(tag)
        parts.append(part if part is not None else split_tag(tag, where(i)))
    if scheme == "BIOES":
        return _bioes_to_iob2(parts, where)
    out, before = [], ""
    for prefix, kind in parts:
        if prefix in ("E", "S"):  # only reachable when the caller names the wrong scheme
            raise InputError(f"{where(len(out))}: {prefix}-{kind} in an {scheme} file")
        starts = prefix == "B" or (prefix == "I" and before != kind)
        out.append(OUTSIDE if prefix == OUTSIDE else f"{'B' if starts else 'I'}-{kind}")
        before = kind
    return out


def _bioes_to_iob2(parts: list[tuple[str, str]], where: Callable[[int], str]) -> list[str]:
    out: list[str] = []
    open_kind = ""  # the type of the entity begun by B- and not yet closed by E-
    for i, (prefix, kind) in enumerate(parts):
        tag = f"{prefix}-{kind}" if kind else OUTSIDE
        inside = prefix in ("I", "E")
        if inside != bool(open_kind) or (inside and kind != open_kind):
            expected = f"I-{open_kind} or E-{open_kind}" if open_kind else "O, B- or S-"
            raise InputError(f"{where(i)}: {tag} where BIOES expects {expected}")
        open_kind = kind if prefix in ("B", "I") else ""
        out.append(OUTSIDE if prefix == OUTSIDE else f"{'B' if prefix in ('B', 'S') else 'I'}-{kind}")
    if open_kind:
        raise InputError(f"{where(len(parts) - 1)}: the {open_kind} entity is not closed by E-{open_kind}")
    return out


def chunks(tags: Sequence[str]) -> list[Chunk]:
    """The entities of one sentence's IOB2 tags, as conlleval counts them: B- always starts one,
    and so does an I- after O or after another type (a model's invalid sequences included).

    >>> chunks(["B-PER", "I-PER", "O", "I-LOC", "B-LOC"])
    [Chunk(type='PER', start=0, end=2), Chunk(type='LOC', start=3, end=4), Chunk(type='LOC', start=4, end=5)]
    """
    found: list[Chunk] = []
    kind, start = "", 0
    for i, tag in enumerate([*tags, OUTSIDE]):
        prefix, _, this = tag.partition("-")
        if kind and (prefix != "I" or this != kind):
            found.append(Chunk(kind, start, i))
            kind = ""
        if prefix in ("B", "I") and not kind:
            kind, start = this, i
    return found


def entity_types(sentences: Sequence[Sequence[str]]) -> list[str]:
    """The sorted entity types in IOB2 tag lists.

    >>> entity_types([["B-PER", "O"], ["B-LOC", "I-LOC"]])
    ['LOC', 'PER']
    """
    return sorted({tag[2:] for tags in sentences for tag in tags if tag != OUTSIDE})


def tag_names(types: Sequence[str]) -> list[str]:
    """The model's labels: O, then B- and I- of each type, in a stable order.

    >>> tag_names(["LOC", "PER"])
    ['O', 'B-LOC', 'I-LOC', 'B-PER', 'I-PER']
    """
    return [OUTSIDE, *[f"{p}-{t}" for t in types for p in ("B", "I")]]
