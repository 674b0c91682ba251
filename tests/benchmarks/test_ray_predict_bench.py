"""`benchmarks/ray_predict.py`'s own pieces: the input it builds and how it compares labels."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "ray_predict.py"
spec = importlib.util.spec_from_file_location("benchmark_ray_predict", SCRIPT)
bench = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = bench  # dataclasses look their module up there
spec.loader.exec_module(bench)


def test_the_input_repeats_the_source_rows_under_one_header(tmp_path):
    source = tmp_path / "src.tsv"
    source.write_text("text\tlabel\na\t1\nb\t2\nc\t3\n", encoding="utf-8")
    built = bench.build_input(source, 7, tmp_path)
    assert built.read_text(encoding="utf-8").splitlines() == [
        "text\tlabel",
        *["a\t1", "b\t2", "c\t3"] * 2,
        "a\t1",
    ]


def test_labels_are_compared_row_by_row_with_the_closest_tie():
    local = [{"l": "pos", "s": 0.9}, {"l": "neg", "s": 0.4}]
    assert bench.compare(local, local, "l", "s") == (True, 0, None)
    ray = [{"l": "pos", "s": 0.9}, {"l": "pos", "s": 0.5001}]
    equal, differing, closest = bench.compare(local, ray, "l", "s")
    assert (equal, differing) == (False, 1) and abs(closest - 0.0001) < 1e-9
