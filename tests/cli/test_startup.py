"""The CLI starts with the garbage collector paused and gives it back once the model is loaded."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cli.helpers import env

# Runs the CLI's own entry point in a process, then reports the collector's state.
PROBE = """
import gc, sys
from clearpipe.cli.app import main
sys.argv = ["clearpipe", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print("GC", gc.isenabled(), gc.get_freeze_count() > 0, file=sys.stderr)
"""


def probe(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env(), timeout=120
    )
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["classify", "trace"])
def test_collector_is_back_and_start_up_frozen_once_the_model_is_loaded(tiny_bert, command):
    assert probe(command, "a good film", "--model", str(tiny_bert)) == "GC True True"


def test_predict_over_a_file_runs_with_the_collector(tiny_bert, tmp_path):
    table = tmp_path / "in.csv"
    table.write_text("text\na good film\nbad\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert probe("predict", str(table), "--output", str(out), "--model", str(tiny_bert)) == "GC True True"
