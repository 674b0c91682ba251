"""A Ray worker's code run in this process, without Ray: a unit becomes a staged part, and a
user's mistake on a worker travels back as data and is raised on the driver as itself."""

import gc
import json

import pytest

import clearpipe
from clearpipe.bulk.files import list_inputs
from clearpipe.bulk.local import PredictJob, plan_for
from clearpipe.bulk.ray import Predictor, WorkerSpec, _collect
from clearpipe.bulk.units import Reading, cut_units
from clearpipe.errors import CheckpointError, InputError


class Finished:
    """What `map_batches` hands the driver: rows to iterate."""

    def __init__(self, rows):
        self.rows = rows

    def iter_rows(self):
        return iter(self.rows)


@pytest.fixture
def spec(tiny_bert, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("id,text\n" + "".join(f"{i},the film was good\n" for i in range(10)), encoding="utf-8")
    job = PredictJob(source, tmp_path / "out", chunk_rows=4)
    plan = plan_for(clearpipe.load(tiny_bert, device="cpu"), job, ["id", "text"], "jsonl", str(source), 0, 0)
    (tmp_path / "staging").mkdir()
    files = list_inputs(str(source))
    return WorkerSpec(str(tiny_bert), {"device": "cpu"}, files, plan, job, str(tmp_path / "staging"), "jsonl")


def _worker(spec: WorkerSpec) -> Predictor:
    worker = Predictor(spec)
    gc.unfreeze()  # the worker freezes its own process's objects; this one is pytest's
    return worker


def test_a_unit_becomes_a_staged_part_and_a_mistake_a_report(spec, tmp_path):
    units = cut_units(spec.files, Reading(4), ["text"], lambda chunk, file: None)
    worker = _worker(spec)
    done = worker.report(units[0])
    assert done["error"] == "" and done["rows"] == 4
    part = tmp_path / "staging" / done["part"]
    assert [json.loads(line)["id"] for line in part.read_text(encoding="utf-8").splitlines()] == [
        "0",
        "1",
        "2",
        "3",
    ]

    spec.job.input.write_text("id,text\n0,cut short\n", encoding="utf-8")  # the input changed under the run
    failed = worker.report(units[1])
    assert failed["error"] == "InputError" and "changed while it was being classified" in failed["message"]
    with pytest.raises(InputError, match="changed while it was being classified"):
        _collect(Finished([done, failed]), 10, 0, None)


def test_a_model_missing_on_a_worker_is_reported_per_unit(spec, tmp_path):
    worker = _worker(WorkerSpec(**{**spec.__dict__, "model": str(tmp_path / "not-here")}))
    units = cut_units(spec.files, Reading(4), ["text"], lambda chunk, file: None)
    report = worker.report(units[0])
    assert report["error"] == "CheckpointError"
    with pytest.raises(CheckpointError, match="no such model folder"):
        _collect(Finished([report]), 10, 0, None)
