"""Candidate labels for zero-shot classification: a name, and optionally a short description.

A description is what the encoder reads in place of the name ("Sci/Tech" is a poor sentence;
"news about science and technology" is a good one); the name is what the answer shows. Labels
come as a comma-separated string (the CLI's `--labels`, where `name=description` gives a
description and `\\,` a comma inside one), a list of such strings, a dict of name ->
description (None: none), or `Label`s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from clearpipe.errors import InputError

CandidateLabels = str | Sequence["str | Label"] | Mapping[str, "str | None"]


@dataclass(frozen=True)
class Label:
    """One candidate label: `name` in the answer, `description` (if any) in the prompt.

    >>> Label("Sci/Tech", "science and technology news").prompt
    'science and technology news'
    """

    name: str
    description: str | None = None

    @property
    def prompt(self) -> str:
        """What fills the template's `{}`: the description, else the name."""
        return self.description or self.name

    @classmethod
    def parse(cls, text: str) -> Label:
        """`"name"` or `"name=description"`, spaces around either trimmed.

        >>> Label.parse("Sports = news about sports")
        Label(name='Sports', description='news about sports')
        """
        name, has_description, description = text.partition("=")
        return cls(name.strip(), description.strip() if has_description else None)


def parse_labels(text: str) -> list[Label]:
    """The labels of a comma-separated string such as the CLI's `--labels`, checked.

    `name=description` gives a label a description; `\\,` is a comma inside a name or
    description.

    >>> [label.name for label in parse_labels("World,Sports,Sci/Tech=science\\\\, technology")]
    ['World', 'Sports', 'Sci/Tech']
    """
    marker = "\x00"  # stands for an escaped comma while the string is split
    parts = text.replace("\\,", marker).split(",")
    return check_labels([Label.parse(part.replace(marker, ",")) for part in parts])


def as_labels(candidate_labels: CandidateLabels) -> list[Label]:
    """Any accepted form of candidate labels (see the module docstring) as checked `Label`s.

    >>> as_labels({"Sports": None, "Sci/Tech": "science and technology news"})[1].prompt
    'science and technology news'
    """
    if isinstance(candidate_labels, str):
        return parse_labels(candidate_labels)
    if isinstance(candidate_labels, Mapping):
        return check_labels([_from_pair(name, description) for name, description in candidate_labels.items()])
    labels: list[Label] = []
    for i, item in enumerate(candidate_labels):
        if isinstance(item, Label):
            labels.append(item)
        elif isinstance(item, str):
            labels.append(Label.parse(item))
        else:
            raise InputError(f"candidate label {i} is {type(item).__name__}, not a string or Label")
    return check_labels(labels)


def check_labels(labels: list[Label]) -> list[Label]:
    """Refuse an empty label set, an empty name, or a name given twice, naming it.

    >>> check_labels([Label("a"), Label("a")])
    Traceback (most recent call last):
    clearpipe.errors.InputError: candidate label 'a' is given twice
    """
    if not labels:
        raise InputError(
            "no candidate labels: give at least one, e.g. candidate_labels=['sports', 'politics']"
        )
    seen: set[str] = set()
    for i, label in enumerate(labels):
        if not label.name:
            raise InputError(f"candidate label {i} is empty")
        if label.description is not None and not label.description:
            raise InputError(f"candidate label {label.name!r} has an empty description after '='")
        if label.name in seen:
            raise InputError(f"candidate label {label.name!r} is given twice")
        seen.add(label.name)
    return labels


def check_template(template: str) -> str:
    """Refuse a hypothesis template without the `{}` where the label goes.

    >>> check_template("This text is about {}.")
    'This text is about {}.'
    """
    try:
        filled = template.format("\x00") if isinstance(template, str) else None
    except (IndexError, KeyError, ValueError):  # "{0} {1}", "{label}", an unmatched brace
        filled = None
    if filled is None or filled == template:
        raise InputError(f"hypothesis_template {template!r} needs one {{}} where the label goes")
    return template


def _from_pair(name: object, description: object) -> Label:
    if not isinstance(name, str) or not (description is None or isinstance(description, str)):
        raise InputError(f"candidate label {name!r}: names and descriptions must be strings")
    return Label(name.strip(), None if description is None else description.strip())
