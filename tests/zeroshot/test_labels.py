"""Candidate labels: the forms they come in, and bad input refused in one line naming it."""

from __future__ import annotations

import pytest

from clearpipe.errors import InputError
from clearpipe.zeroshot import Label, parse_labels
from clearpipe.zeroshot.labels import as_labels, check_template


def test_the_cli_string_gives_names_and_descriptions():
    labels = parse_labels("World, Sports,Business,Sci/Tech=science and technology news")
    assert labels == [
        Label("World"),
        Label("Sports"),
        Label("Business"),
        Label("Sci/Tech", "science and technology news"),
    ]
    assert [label.prompt for label in labels][-1] == "science and technology news"


def test_an_escaped_comma_stays_inside_a_description():
    assert parse_labels(r"a=x\, y and z,b") == [Label("a", "x, y and z"), Label("b")]


def test_every_python_form_gives_the_same_labels():
    expected = [Label("Sports"), Label("Sci/Tech", "science news")]
    assert as_labels(["Sports", "Sci/Tech=science news"]) == expected
    assert as_labels({"Sports": None, "Sci/Tech": "science news"}) == expected
    assert as_labels([Label("Sports"), Label("Sci/Tech", "science news")]) == expected
    assert as_labels("Sports,Sci/Tech=science news") == expected


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("a,,b", "candidate label 1 is empty"),
        (["a", " "], "candidate label 1 is empty"),
        ("a,b,a", "candidate label 'a' is given twice"),
        ({"a": "x", "b": ""}, "candidate label 'b' has an empty description"),
        ([], "no candidate labels"),
        ([1, "a"], "candidate label 0 is int"),
    ],
)
def test_bad_labels_are_named(labels, message):
    with pytest.raises(InputError, match=message) as error:
        as_labels(labels)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("template", ["This example is.", "{label} it is", "{0} and {1}", "{"])
def test_a_template_without_its_place_is_refused(template):
    with pytest.raises(InputError, match=r"needs one \{\} where the label goes"):
        check_template(template)
