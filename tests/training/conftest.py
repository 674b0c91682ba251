"""Teachers and a student base shared by the distillation tests (`training.distill`, `training.hidden`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkpoints import make_sensitive
from tiny_bases import word_base


@pytest.fixture(scope="session")
def teacher(tiny, tmp_path_factory) -> Path:
    """A fixed teacher whose scores depend on the words (large random weights)."""
    source = tiny("bert", 2, id2label={0: "negative", 1: "positive"})
    return make_sensitive(source, tmp_path_factory.mktemp("teacher"), seed=3)


@pytest.fixture(scope="session")
def second_teacher(tiny, tmp_path_factory) -> Path:
    source = tiny("bert", 2, id2label={0: "negative", 1: "positive"})
    return make_sensitive(source, tmp_path_factory.mktemp("second-teacher"), seed=11)


@pytest.fixture(scope="session")
def student_base(tmp_path_factory, minilm_dir) -> Path:
    return word_base(tmp_path_factory.mktemp("student-base"), minilm_dir)
