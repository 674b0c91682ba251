"""`clearpipe predict` with a token classifier goes the classifiers' bulk path: an interrupted run
resumes with every row once (entities column, or one row per entity), `--engine ray` writes what
the local path writes, a chunk without entities still makes a part, and `--aggregation` reaches
the classifier. The oracle is the Python API called on the same texts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import clearpipe
import clearpipe.lite
from clearpipe.bulk.local import PredictJob, predict_file
from cli.helpers import assert_user_error, run

N, CHUNK, DONE = 40, 6, 3  # rows, rows per part, parts the interrupted run finished
# Each CLI run starts two Ray workers that import torch and load the model: 30 s on a quiet
# 2-core machine, over 120 s (the CLI helper's default) on a busy one.
RAY_TIMEOUT = 600
WORDS = ["the film", "new company in the world market", "cafe worldly market price!", "", "a story"]


class Stop(Exception):
    """Stands for a kill: not a user error, so the parts stay for --resume."""


@pytest.fixture(scope="module")
def ner(ner_bert):
    return clearpipe.load(ner_bert, dtype="float32", device="cpu")


def _texts(n: int = N) -> list[str]:
    # Every third chunk is only empty texts, so with one row per entity some parts hold no rows.
    return ["" if (i // CHUNK) % 3 == 2 else f"{WORDS[i % len(WORDS)]} {i}" for i in range(n)]


def _csv(path: Path, texts: list[str]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "text"])
        writer.writerows([i, text] for i, text in enumerate(texts))
    return path


def _read(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _expected(ner, texts: list[str], per_entity: bool, strategy: str | None = None) -> list[tuple]:
    """(row, entity fields...) for every entity the API finds, in input order."""
    found = ner(texts, aggregation_strategy=strategy)
    key = "entity" if strategy == "none" else "entity_group"
    return [(i + 1, e[key], e["start"], e["end"]) for i, one in enumerate(found) for e in one]


def _got(rows: list[dict], per_entity: bool, strategy: str | None = None) -> list[tuple]:
    key = "entity" if strategy == "none" else "entity_group"
    if per_entity:
        return [(int(r["row"]), r[key], int(r["start"]), int(r["end"])) for r in rows]
    return [(int(r["id"]) + 1, e[key], e["start"], e["end"]) for r in rows for e in json.loads(r["entities"])]


def _rounded(found: list[list[dict]]) -> list[list[dict]]:
    # Scores through JSON and through the API differ in the last bits of a float.
    return [[{**e, "score": round(e["score"], 5)} for e in one] for one in found]


def _interrupt(ner, source: Path, out: Path, per_entity: bool) -> Path:
    seen = []

    def stop_after(chunk):
        seen.append(chunk)
        if len(seen) == DONE:
            raise Stop

    with pytest.raises(Stop):
        predict_file(
            ner, PredictJob(source, out, chunk_rows=CHUNK, one_row_per_entity=per_entity), stop_after
        )
    return out.with_name(out.name + ".parts")


@pytest.mark.parametrize(("per_entity", "suffix"), [(False, "csv"), (True, "parquet"), (True, "jsonl")])
def test_an_interrupted_run_resumes_with_every_row_once(ner, ner_bert, tmp_path, per_entity, suffix):
    texts = _texts()
    source = _csv(tmp_path / "in.csv", texts)
    out = tmp_path / f"out.{suffix}"
    parts = _interrupt(ner, source, out, per_entity)
    assert len(list(parts.glob("part-*"))) == DONE and not out.exists()
    flags = ["--one-row-per-entity"] if per_entity else []
    result = run(
        "predict", source, "-o", out, "--model", ner_bert, "--dtype", "float32", "--chunk-rows", CHUNK,
        "--resume", *flags,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"({DONE * CHUNK} from the interrupted run)" in result.stderr
    rows = _read(out)
    expected = _expected(ner, texts, per_entity)
    assert expected and _got(rows, per_entity) == expected
    if per_entity:
        assert f"wrote {len(expected)} entity rows for {N} input rows" in result.stderr
    else:
        assert [r["id"] for r in rows] == [str(i) for i in range(N)]
    assert not parts.exists()


def test_a_changed_option_is_refused_on_resume(ner, ner_bert, tmp_path):
    source = _csv(tmp_path / "in.csv", _texts())
    out = tmp_path / "out.csv"
    parts = _interrupt(ner, source, out, per_entity=False)
    result = run(
        "predict", source, "-o", out, "--model", ner_bert, "--dtype", "float32", "--chunk-rows", CHUNK,
        "--resume", "--aggregation", "simple",
    )  # fmt: skip
    assert_user_error(result, "cannot resume", "aggregation_strategy")
    assert parts.is_dir() and not out.exists()  # the interrupted run is still there to resume


def test_a_null_text_is_named_by_row_and_column(ner, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "the film"}\n{"text": null}\n', encoding="utf-8")
    with pytest.raises(clearpipe.errors.InputError, match=r'in.jsonl, row 2, column "text".*missing'):
        predict_file(ner, PredictJob(source, tmp_path / "o.csv"))
    assert not list(tmp_path.glob("o.csv*"))


@pytest.mark.parametrize("strategy", ["none", "simple", "max"])
def test_aggregation_reaches_classify_and_predict(ner, ner_bert, tmp_path, strategy):
    texts = [t for t in _texts(8) if t]
    result = run(
        "classify", *texts, "--model", ner_bert, "--dtype", "float32", "--json", "--aggregation", strategy
    )
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert _rounded(printed) == _rounded(ner(texts, aggregation_strategy=strategy))
    source, out = _csv(tmp_path / "in.csv", texts), tmp_path / "out.jsonl"
    result = run(
        "predict", source, "-o", out, "--model", ner_bert, "--dtype", "float32", "--one-row-per-entity",
        "--aggregation", strategy.upper(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert _got(_read(out), True, strategy) == _expected(ner, texts, True, strategy)


def test_aggregation_is_refused_where_it_means_nothing(ner_bert, tiny_bert, tmp_path):
    assert_user_error(run("classify", "x", "--model", tiny_bert, "--aggregation", "simple"), "--aggregation")
    assert_user_error(
        run("classify", "x", "--model", ner_bert, "--aggregation", "longest"), "longest", "simple"
    )
    source = _csv(tmp_path / "in.csv", ["the film"])
    for flags, named in ((["--min-score", "0.5"], "--min-score"), (["--top-k", "2"], "--top-k")):
        result = run("predict", source, "-o", tmp_path / "o.csv", "--model", ner_bert, *flags)
        assert_user_error(result, named)
    assert not (tmp_path / "o.csv").exists()


def test_predict_lite_runs_an_exported_tagger_without_torch(ner_bert, tmp_path):
    from clearpipe.onnx.export import export_onnx

    folder = tmp_path / "onnx"
    export_onnx(str(ner_bert), folder, texts=[t for t in _texts() if t], check_name="the test's texts")
    texts = _texts(12)
    source, out = _csv(tmp_path / "in.csv", texts), tmp_path / "out.jsonl"
    result = run("predict", source, "-o", out, "--model", folder, "--lite", "--chunk-rows", CHUNK)
    assert result.returncode == 0, result.stderr
    assert _got(_read(out), False) == _expected(clearpipe.lite.load(folder), texts, False)


@pytest.mark.slow
@pytest.mark.parametrize(("per_entity", "fmt"), [(False, "jsonl"), (True, "parquet"), (True, "csv")])
def test_ray_writes_the_entities_the_local_path_writes(ray_cluster, ner, ner_bert, tmp_path, per_entity, fmt):
    texts = _texts()
    source = _csv(tmp_path / "in.csv", texts)
    flags = ["--one-row-per-entity"] if per_entity else []
    out = tmp_path / "out"
    result = run(
        "predict", source, "-o", out, "--model", ner_bert, "--dtype", "float32", "--chunk-rows", CHUNK,
        "--engine", "ray", "--address", ray_cluster, "--workers", 2, "--output-format", fmt, *flags,
        timeout=RAY_TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "_manifest.json").read_text(encoding="utf-8"))
    assert (out / "_SUCCESS").is_file() and manifest["input_rows"] == N
    rows = [row for part in manifest["parts"] for row in _read(out / part["file"])]
    assert manifest["rows"] == len(rows)
    expected = _expected(ner, texts, per_entity)
    if fmt == "csv" or not per_entity:
        rows = [{**r, "id": int(r["id"])} for r in rows]
    assert _got(rows, per_entity) == expected
    if per_entity:  # a unit of empty texts still publishes its part, holding no rows
        assert any(part["rows"] == 0 for part in manifest["parts"])
        assert f"wrote {len(expected)} entity rows for {N} input rows" in result.stderr
    again = run(
        "predict", source, "-o", out, "--model", ner_bert, "--dtype", "float32", "--chunk-rows", CHUNK,
        "--engine", "ray", "--address", ray_cluster, "--workers", 2, "--output-format", fmt, "--resume", *flags,
        timeout=RAY_TIMEOUT,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr  # a published run resumes to itself
