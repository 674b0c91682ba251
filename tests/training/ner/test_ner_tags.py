"""Tag schemes: IOB1/IOB2/BIOES recognised and converted to IOB2, tags outside them refused with
their place, and chunks read as conlleval reads them."""

from __future__ import annotations

import pytest

from clearpipe.errors import InputError
from clearpipe.training.ner.tags import Chunk, chunks, detect_scheme, tag_names, to_iob2


def place(i: int) -> str:
    return f"f.txt, line {i + 1}"


def test_schemes_are_recognised():
    assert detect_scheme([["B-PER", "I-PER", "O", "B-LOC"]]) == "IOB2"
    assert detect_scheme([["I-PER", "I-PER", "O", "I-LOC", "B-LOC"]]) == "IOB1"
    assert detect_scheme([["B-PER", "E-PER", "O", "S-LOC"]]) == "BIOES"


def test_iob1_becomes_iob2():
    tags = ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]
    assert to_iob2(tags, "IOB1", place) == ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG"]


def test_bioes_becomes_iob2():
    tags = ["S-PER", "B-ORG", "I-ORG", "E-ORG", "O", "B-LOC", "E-LOC"]
    assert to_iob2(tags, "BIOES", place) == ["B-PER", "B-ORG", "I-ORG", "I-ORG", "O", "B-LOC", "I-LOC"]


@pytest.mark.parametrize(
    ("tags", "line", "fragment"),
    [
        (["O", "I-PER", "E-PER"], 2, "I-PER where BIOES expects O, B- or S-"),
        (["B-PER", "O"], 2, "O where BIOES expects I-PER or E-PER"),
        (["B-PER", "E-LOC"], 2, "E-LOC where BIOES expects I-PER or E-PER"),
        (["S-PER", "B-LOC"], 2, "LOC entity is not closed by E-LOC"),
    ],
)
def test_broken_bioes_is_refused_at_its_line(tags, line, fragment):
    with pytest.raises(InputError, match=f"f.txt, line {line}: .*") as error:
        to_iob2(tags, "BIOES", place)
    assert fragment in str(error.value)


@pytest.mark.parametrize("tag", ["X-PER", "PER", "B-", "b-PER", "B_PER"])
def test_a_tag_outside_the_schemes_is_refused(tag):
    with pytest.raises(InputError, match=f"f.txt, line 2: tag '{tag}' is not O or B-/I-/E-/S-"):
        to_iob2(["O", tag], "IOB2", place)


def test_chunks_follow_conlleval():
    # I- after O, or after another type, starts an entity; B- after I- of the same type too.
    assert chunks(["I-PER", "I-PER", "B-PER", "I-LOC", "O", "I-ORG"]) == [
        Chunk("PER", 0, 2),
        Chunk("PER", 2, 3),
        Chunk("LOC", 3, 4),
        Chunk("ORG", 5, 6),
    ]


def test_tag_names_put_o_first():
    assert tag_names(["MISC", "PER"]) == ["O", "B-MISC", "I-MISC", "B-PER", "I-PER"]
