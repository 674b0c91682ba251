"""`clearpipe predict --engine ray` on a real local Ray (2 CPUs, tiny checkpoints): the published
parts equal the local path's output row for row in every format, every row lands exactly once
when an actor is killed mid-run or the driver is killed and the run resumed, and bad input fails
as it does locally, with nothing published."""

import csv
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'clearpipe[ray]'")

import clearpipe  # noqa: E402
from clearpipe.bulk.local import PredictJob, predict_file  # noqa: E402
from clearpipe.bulk.ray import RayJob, predict_on_ray  # noqa: E402
from clearpipe.errors import ClearpipeError, InputError  # noqa: E402
from clearpipe.postprocess import BEST  # noqa: E402
from cli.helpers import env, popen, run  # noqa: E402

PREDICTOR = "MapWorker(MapBatches(Predictor))"  # the class name Ray Data gives our actors


def _csv(path: Path, n: int, start: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review"])
        for i in range(start, start + n):
            writer.writerow([i, f"the film {i} was " + ("good" if i % 2 else "bad, really\nbad")])
    return path


def _tsv(path: Path, n: int) -> Path:
    lines = ["sentence\tlabel"] + [f'"the {i}" story was {"good " * (i % 9)}bad\t{i % 2}' for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _jsonl(path: Path, n: int) -> Path:
    rows = [
        {"text": f"the film {i}", "text_pair": "good" if i % 3 else "bad", "meta": {"i": i}} for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _parquet(path: Path, n: int) -> Path:
    note = [None if i < 10 else f"n{i}" for i in range(n)]  # all null in the first part
    table = pa.table(
        {"id": pa.array(range(n), pa.int32()), "text": [f"a good film {i}" for i in range(n)], "note": note}
    )
    pq.write_table(table, path, row_group_size=8)
    return path


def _decoded(value):
    # CSV/TSV cells are text; decode them the same way on both sides before comparing.
    try:
        return json.loads(value) if isinstance(value, str) else value
    except json.JSONDecodeError:
        return value


def _read(path: Path, fmt: str) -> list[dict]:
    if fmt == "parquet":
        return pq.read_table(path).to_pylist()
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    quoting = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if fmt == "tsv" else {}
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: _decoded(v) for k, v in row.items()} for row in csv.DictReader(f, **quoting)]


def _published(out: Path) -> list[dict]:
    """The published rows, part by part in manifest order, after checking the folder is complete."""
    manifest = json.loads((out / "_manifest.json").read_text(encoding="utf-8"))
    assert (out / "_SUCCESS").is_file() and not (out / "_staging").exists()
    assert sorted(p.name for p in out.glob("part-*")) == [p["file"] for p in manifest["parts"]]
    rows = [row for part in manifest["parts"] for row in _read(out / part["file"], manifest["format"])]
    assert manifest["rows"] == len(rows) == sum(p["rows"] for p in manifest["parts"])
    return rows


def _close(a, b) -> bool:
    # Workers run one thread each and this process more, so float sums may differ in the last bits.
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, abs=1e-5)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return a == b


def _txt(path: Path, n: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("good\n\nbad film\n" * (n // 3), encoding="utf-8")
    return path


CASES = {
    # the input files, INPUT (relative to tmp_path), output format, top_k, load options
    "csv folder -> parquet, top-k all": (
        lambda d: [_csv(d / "in" / "a.csv", 30), _csv(d / "in" / "b.csv", 30, start=100)],
        "in",
        "parquet",
        None,
        {},
    ),
    "tsv -> csv, chunked long texts": (
        lambda d: [_tsv(d / "in.tsv", 30)],
        "in.tsv",
        "csv",
        BEST,
        {"long_text": "chunk", "max_length": 16},
    ),
    "jsonl pairs -> jsonl, top-k 2": (lambda d: [_jsonl(d / "in.jsonl", 30)], "in.jsonl", "jsonl", 2, {}),
    "parquet -> tsv": (lambda d: [_parquet(d / "in.parquet", 30)], "in.parquet", "tsv", BEST, {}),
    "txt glob -> parquet": (lambda d: [_txt(d / "t" / "x.txt", 30)], "t/*.txt", "parquet", BEST, {}),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_ray_output_equals_the_local_output_row_for_row(ray_cluster, tiny_bert, tmp_path, case):
    make, spec, fmt, top_k, load = CASES[case]
    sources = make(tmp_path)
    options = {"device": "cpu", **load}
    clf = clearpipe.load(tiny_bert, **options)
    expected = []
    for n, source in enumerate(sources):  # the local path reads one file at a time
        local_out = tmp_path / f"local{n}.{fmt}"
        predict_file(clf, PredictJob(source, local_out, top_k=top_k, chunk_rows=7))
        expected += _read(local_out, fmt)
    out = tmp_path / "out"
    job = RayJob(
        PredictJob(Path(spec), out, top_k=top_k, chunk_rows=7),
        str(tmp_path / spec),
        str(out),
        str(tiny_bert),
        options,
        fmt,
        workers=2,
    )
    summary = predict_on_ray(clf, job)
    got = _published(out)
    assert summary.rows == len(expected) and summary.resumed_rows == 0
    assert len(got) == len(expected)
    assert [(g, e) for g, e in zip(got, expected, strict=True) if not _close(g, e)] == []


def _kill_one_predictor(staging: Path, killed: list[str]) -> None:
    """Once a part is staged, kill one of the run's actors with Ray's own kill (it restarts)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if any(staging.glob("*/part-*")):
            # Ray's public state API needs the dashboard, which these tests turn off.
            for actor_id, info in ray._private.state.actors().items():
                if info["ActorClassName"] == PREDICTOR and info["State"] == "ALIVE":
                    worker = ray._private.worker.global_worker
                    handle = worker.core_worker.get_actor_handle(ray.ActorID(bytes.fromhex(actor_id)))
                    ray.kill(handle, no_restart=False)
                    killed.append(actor_id)
                    return
        time.sleep(0.005)


@pytest.mark.slow
def test_an_actor_killed_mid_run_still_yields_every_row_exactly_once(ray_cluster, tiny_bert, tmp_path):
    n = 3000
    source = _csv(tmp_path / "in.csv", n)
    out = tmp_path / "out"
    clf = clearpipe.load(tiny_bert, device="cpu")
    killed: list[str] = []
    killer = threading.Thread(target=_kill_one_predictor, args=(out / "_staging", killed))
    killer.start()
    # Two workers of one thread each: one keeps working while the other restarts.
    options = {"device": "cpu"}
    job = RayJob(
        PredictJob(source, out, chunk_rows=40), str(source), str(out), str(tiny_bert), options, workers=2
    )
    summary = predict_on_ray(clf, job)
    killer.join()
    assert killed, "no actor was alive to kill"
    assert ray._private.state.actors()[killed[0]]["NumRestarts"] >= 1
    ids = [row["id"] for row in _published(out)]
    assert ids == [str(i) for i in range(n)] and summary.rows == n


@pytest.mark.slow
def test_a_killed_driver_resumes_with_every_row_once_in_order(ray_cluster, tiny_bert, tmp_path):
    n = 4000
    source = _csv(tmp_path / "in.csv", n)
    out = tmp_path / "out"
    args = ["predict", source, "-o", out, "-m", tiny_bert, "--chunk-rows", "50", "--engine", "ray"]
    proc = popen(*args, "--address", ray_cluster, "--workers", "2")
    deadline = time.monotonic() + 120
    while len(list(out.glob("_staging/*/part-*"))) < 3 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "_SUCCESS").exists() and not list(out.glob("part-*"))

    clf = clearpipe.load(tiny_bert, device="cpu")
    job = PredictJob(source, out, chunk_rows=50)
    ray_job = RayJob(job, str(source), str(out), str(tiny_bert), {"device": "cpu"}, workers=2)
    with pytest.raises(InputError, match="--resume"):
        predict_on_ray(clf, ray_job)
    with pytest.raises(InputError, match="chunk_rows"):
        predict_on_ray(clf, RayJob(PredictJob(source, out, chunk_rows=60, resume=True), *_rest(ray_job)))
    summary = predict_on_ray(
        clf, RayJob(PredictJob(source, out, chunk_rows=50, resume=True), *_rest(ray_job))
    )
    assert 150 <= summary.resumed_rows < n
    assert [row["id"] for row in _published(out)] == [str(i) for i in range(n)]
    again = predict_on_ray(clf, RayJob(PredictJob(source, out, chunk_rows=50, resume=True), *_rest(ray_job)))
    assert again.rows == again.resumed_rows == n  # resuming a published run changes nothing


def _rest(job: RayJob) -> tuple:
    return (job.input, job.output, job.model, job.load_options, None, None, job.workers)


def _local_error(call) -> str:
    with pytest.raises(ClearpipeError) as caught:
        call()
    return f"clearpipe: error: {caught.value}"


def _bad_inputs(tmp_path: Path, tiny_bert: Path) -> dict:
    """name -> (input file, extra CLI args, how the local path fails on it)."""
    bad_bytes = tmp_path / "bytes.txt"
    bad_bytes.write_bytes(b"good\n\xff\xfe bad\n")
    nulls = tmp_path / "nulls.jsonl"
    nulls.write_text('{"text": "ok"}\n{"text": null}\n', encoding="utf-8")
    columns = _csv(tmp_path / "cols.csv", 3)
    clf = clearpipe.load(tiny_bert, device="cpu")
    missing_model = tmp_path / "no-such-model"

    def local(source, **job):
        return lambda: predict_file(clf, PredictJob(source, tmp_path / "o.csv", **job))

    return {
        "undecodable": (bad_bytes, [], local(bad_bytes)),
        "null text": (nulls, [], local(nulls)),
        "missing column": (columns, ["--text-column", "body"], local(columns, text_column="body")),
        "unknown model": (columns, ["-m", missing_model], lambda: clearpipe.load(missing_model)),
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", ["undecodable", "null text", "missing column", "unknown model"])
def test_bad_input_fails_as_locally_and_publishes_nothing(tiny_bert, tmp_path, case):
    source, extra, local = _bad_inputs(tmp_path, tiny_bert)[case]
    out = tmp_path / "out"
    result = run("predict", source, "-o", out, "-m", tiny_bert, *extra, "--engine", "ray")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [_local_error(local)]
    assert not out.exists()


def test_ray_is_imported_only_for_engine_ray():
    code = "import sys, clearpipe.cli.app, clearpipe.bulk.local; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(), check=True)
    assert out.stdout.strip() == "False"


def test_a_lite_worker_imports_no_torch():
    # What a --lite actor imports: the module Ray unpickles Predictor from, and clearpipe.lite.
    code = (
        "import sys, clearpipe.bulk.ray, clearpipe.lite; "
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env(), check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_lite_workers_write_the_rows_predict_lite_writes_here(ray_cluster, tiny_bert, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from clearpipe.onnx.export import export_onnx

    folder = tmp_path / "onnx"
    export_onnx(str(tiny_bert), folder, texts=[f"the film {i} was good" for i in range(40)], check_name="t")
    source = _csv(tmp_path / "in.csv", 60)
    local, out = tmp_path / "local.csv", tmp_path / "out"
    lite = ["--lite", "--model", folder, "--chunk-rows", "20", "--top-k", "2"]
    assert run("predict", source, "-o", local, *lite).returncode == 0
    done = run(
        "predict",
        source,
        "-o",
        out,
        *lite,
        "--engine",
        "ray",
        "--address",
        ray_cluster,
        "--output-format",
        "csv",
    )
    assert done.returncode == 0, done.stderr
    got, expected = _published(out), _read(local, "csv")
    assert len(got) == 60 and [(g, e) for g, e in zip(got, expected, strict=True) if not _close(g, e)] == []
    manifest = json.loads((out / "_manifest.json").read_text(encoding="utf-8"))
    assert manifest["options"]["lite"] is True and "referee" in manifest["options"]
    assert "device" not in manifest["options"]
    gpu = run("predict", source, "-o", tmp_path / "gpu", *lite, "--engine", "ray", "--gpus-per-worker", "1")
    assert gpu.returncode != 0 and "--lite runs on the CPU" in gpu.stderr


def _stopped_before_publishing(monkeypatch, clf, job: RayJob) -> None:
    """Run `job` until every part is staged, then stop it as a kill before publishing would."""
    from clearpipe.bulk import staging

    class Stop(Exception):
        pass

    def stop(*args):
        raise Stop

    with monkeypatch.context() as patched:
        patched.setattr(staging, "publish", stop)
        with pytest.raises(Stop):
            predict_on_ray(clf, job)


@pytest.mark.slow
def test_a_staged_part_cut_short_is_redone_on_resume(ray_cluster, tiny_bert, tmp_path, monkeypatch):
    n = 90
    source, out = _csv(tmp_path / "in.csv", n), tmp_path / "out"
    clf = clearpipe.load(tiny_bert, device="cpu")
    job = RayJob(
        PredictJob(source, out, chunk_rows=20), str(source), str(out), str(tiny_bert), {"device": "cpu"}
    )
    _stopped_before_publishing(monkeypatch, clf, job)
    staged = sorted(out.glob("_staging/*/part-*"))
    assert len(staged) == 5
    staged[1].write_bytes(staged[1].read_bytes()[:-100])  # a crash left it short
    staged[3].write_bytes(b"")
    resumed = predict_on_ray(clf, RayJob(replace(job.predict, resume=True), *_rest(job)))
    assert resumed.rows == n and resumed.resumed_rows == n - 40
    assert [row["id"] for row in _published(out)] == [str(i) for i in range(n)]


@pytest.mark.slow
def test_a_part_damaged_before_publishing_is_one_line_and_nothing_published(
    ray_cluster, tiny_bert, tmp_path, monkeypatch
):
    from clearpipe.bulk import ray as bulk_ray

    source, out = _csv(tmp_path / "in.csv", 40), tmp_path / "out"
    clf = clearpipe.load(tiny_bert, device="cpu")
    real_run = bulk_ray._run

    def run_then_damage(*args):
        stats = real_run(*args)
        next(out.glob("_staging/*/part-*")).write_bytes(b"PAR1 cut short")
        return stats

    monkeypatch.setattr(bulk_ray, "_run", run_then_damage)
    job = RayJob(
        PredictJob(source, out, chunk_rows=20), str(source), str(out), str(tiny_bert), {"device": "cpu"}
    )
    with pytest.raises(ClearpipeError, match="nothing was published") as caught:
        predict_on_ray(clf, job)
    assert "\n" not in str(caught.value) and "rerun with --resume" in str(caught.value)
    assert not (out / "_SUCCESS").exists() and not list(out.glob("part-*"))


@pytest.mark.slow
def test_the_output_folder_reads_as_one_dataset(ray_cluster, tiny_bert, tmp_path):
    import pandas as pd
    import pyarrow.dataset as pads

    n = 30
    source, out = _csv(tmp_path / "in.csv", n), tmp_path / "out"
    clf = clearpipe.load(tiny_bert, device="cpu")
    job = RayJob(
        PredictJob(source, out, chunk_rows=10), str(source), str(out), str(tiny_bert), {"device": "cpu"}
    )
    predict_on_ray(clf, job)
    assert list(pd.read_parquet(out)["id"]) == [str(i) for i in range(n)]
    assert pads.dataset(out).count_rows() == n
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("part-")) == [
        "_SUCCESS",
        "_manifest.json",
    ]


@pytest.mark.slow
def test_a_run_published_with_the_old_manifest_name_still_resumes(ray_cluster, tiny_bert, tmp_path):
    n = 20
    source, out = _csv(tmp_path / "in.csv", n), tmp_path / "out"
    clf = clearpipe.load(tiny_bert, device="cpu")
    job = RayJob(
        PredictJob(source, out, chunk_rows=10), str(source), str(out), str(tiny_bert), {"device": "cpu"}
    )
    predict_on_ray(clf, job)
    (out / "_manifest.json").rename(out / "manifest.json")
    again = predict_on_ray(clf, RayJob(replace(job.predict, resume=True), *_rest(job)))
    assert again.rows == again.resumed_rows == n
