"""The garbage collector is paused only inside clearpipe's loading, and always given back as it was."""

from __future__ import annotations

import gc

import pytest

import clearpipe
from clearpipe.engine import collector


@pytest.mark.parametrize("enabled", [True, False])
def test_paused_restores_the_callers_state_even_on_error(enabled):
    (gc.enable if enabled else gc.disable)()
    try:
        with pytest.raises(ValueError), collector.paused():
            assert not gc.isenabled()
            raise ValueError("boom")
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


@pytest.mark.parametrize("enabled", [True, False])
def test_load_leaves_the_collector_as_it_found_it(tiny_bert, enabled):
    (gc.enable if enabled else gc.disable)()
    try:
        clearpipe.load(tiny_bert, dtype="int8")  # the int8 referee's calibration runs paused too
        assert gc.isenabled() is enabled
    finally:
        gc.enable()
