"""The CLI's flags reach the loaders and `TrainConfig` through one mapping each."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import clearpipe
from clearpipe import lite
from clearpipe.cli.classify import classify
from clearpipe.cli.loading import LoadFlags, from_flags
from clearpipe.cli.train import train
from clearpipe.errors import InputError
from clearpipe.training.data import DataOptions
from clearpipe.training.train import TrainConfig


def test_each_flag_set_is_a_set_of_the_loaders_own_keywords():
    flags = LoadFlags()
    assert set(flags.full_options()) <= set(inspect.signature(clearpipe.load).parameters)
    assert set(flags.lite_options()) <= set(inspect.signature(lite.load).parameters)
    # every LoadFlags field but the switch is a flag of classify, under the same name
    names = {f.name for f in dataclasses.fields(LoadFlags)} - {"lite", "threads"}
    assert names <= set(inspect.signature(classify).parameters)


def test_from_flags_takes_flags_by_name_and_given_values_over_them():
    flags = {"dtype": "int8", "min_score": 0.7, "unrelated": object(), "model": "ignored"}
    got = from_flags(LoadFlags, flags, model="m", lite=True)
    assert (got.model, got.dtype, got.min_score, got.lite, got.device) == ("m", "int8", 0.7, True, "auto")


def test_every_train_config_field_is_a_train_flag_or_derived_from_flags():
    flags = set(inspect.signature(train).parameters)
    derived = {"data_options", "distillation"}  # built from several flags
    for cls, extra in ((TrainConfig, derived), (DataOptions, {"validation_fraction", "header"})):
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = fields - flags - extra - {"pair_column"}
        assert not missing, f"{cls.__name__} fields with no flag: {sorted(missing)}"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (LoadFlags(lite=True), "give it with --model"),
        (LoadFlags(model="x", device="cuda", lite=True), "--lite runs on the CPU"),
        (LoadFlags(model="x", long_text="chunk", lite=True), "--long-text chunk needs the full classifier"),
    ],
)
def test_lite_refuses_what_it_cannot_do_before_loading(flags, message):
    with pytest.raises(InputError, match=message):
        flags.load()
