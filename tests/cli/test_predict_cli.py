import csv
import json
import signal
import time

import pyarrow.parquet as pq
import pytest

import clearpipe
from cli.helpers import assert_user_error, popen, run


def _write_csv(path, n):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "review"])
        for i in range(n):
            writer.writerow([i, f"the film {i} was {'good' if i % 2 else 'bad, really bad'}"])
    return path


def test_predict_csv_keeps_columns_and_adds_predictions(tiny_bert, tmp_path):
    source = _write_csv(tmp_path / "in.csv", 25)
    result = run(
        "predict", source, "--output", tmp_path / "out.csv", "--model", tiny_bert, "--chunk-rows", "7"
    )
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == [str(i) for i in range(25)]
    assert set(rows[0]) == {"id", "review", "label", "score"}
    assert {r["label"] for r in rows} <= {"negative", "positive"}
    assert not (tmp_path / "out.csv.parts").exists()


@pytest.mark.slow
@pytest.mark.parametrize("suffix", ["jsonl", "json", "parquet", "tsv"])
def test_predict_writes_every_format_with_top_k(tiny_bert, tmp_path, suffix):
    source = tmp_path / "in.txt"
    source.write_text("good\nbad\n\nthe film was good\n", encoding="utf-8")
    out = tmp_path / f"out.{suffix}"
    result = run("predict", source, "-o", out, "--model", tiny_bert, "--top-k", "all")
    assert result.returncode == 0, result.stderr
    if suffix == "parquet":
        rows = pq.read_table(out).to_pylist()
    elif suffix == "json":
        rows = json.loads(out.read_text(encoding="utf-8"))
    elif suffix == "jsonl":
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    else:
        rows = list(csv.DictReader(out.open(encoding="utf-8"), delimiter="\t", quoting=csv.QUOTE_NONE))
    assert [r["text"] for r in rows] == ["good", "bad", "", "the film was good"]
    top = rows[0]["top_k"] if suffix != "tsv" else json.loads(rows[0]["top_k"])
    expected = clearpipe.load(tiny_bert, device="cpu")("good", top_k=None)
    assert [d["label"] for d in top] == [d["label"] for d in expected]  # best first, both labels
    assert [d["score"] for d in top] == pytest.approx([d["score"] for d in expected], abs=0.01)
    assert top[0]["score"] >= top[1]["score"]


@pytest.mark.slow
def test_gold_label_column_is_kept(tiny_bert, shared_data, tmp_path):
    sample = tmp_path / "sst2.tsv"
    lines = (shared_data / "sst2" / "test.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    sample.write_text("".join(lines[:30]), encoding="utf-8")
    result = run("predict", sample, "-o", tmp_path / "out.jsonl", "--model", tiny_bert)
    assert result.returncode == 0, result.stderr
    first = json.loads((tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"sentence", "label", "predicted_label", "predicted_score"}


@pytest.mark.slow
def test_bad_inputs_name_file_row_and_column(tiny_bert, tmp_path):
    bad_bytes = tmp_path / "bytes.txt"
    bad_bytes.write_bytes(b"good\n\xff\xfe bad\n")
    assert_user_error(
        run("predict", bad_bytes, "-o", tmp_path / "o.csv", "-m", tiny_bert),
        "bytes.txt, line 2",
        "--encoding",
    )
    assert (
        run(
            "predict", bad_bytes, "-o", tmp_path / "o.csv", "-m", tiny_bert, "--encoding", "latin-1"
        ).returncode
        == 0
    )

    no_column = _write_csv(tmp_path / "cols.csv", 3)
    assert_user_error(
        run("predict", no_column, "-o", tmp_path / "o2.csv", "-m", tiny_bert, "--text-column", "body"),
        'no column "body"',
        '"id", "review"',
    )
    nulls = tmp_path / "nulls.jsonl"
    nulls.write_text('{"text": "ok"}\n{"text": null}\n', encoding="utf-8")
    assert_user_error(
        run("predict", nulls, "-o", tmp_path / "o3.csv", "-m", tiny_bert), 'nulls.jsonl, row 2, column "text"'
    )
    assert_user_error(
        run("predict", tmp_path / "none.csv", "-o", tmp_path / "o4.csv", "-m", tiny_bert), "no such file"
    )
    assert_user_error(
        run("predict", no_column, "-o", tmp_path / "o5.txt", "-m", tiny_bert), ".txt cannot hold labels"
    )


@pytest.mark.slow
def test_failed_run_keeps_the_previous_output(tiny_bert, tmp_path):
    out = tmp_path / "out.csv"
    out.write_text("precious\n", encoding="utf-8")
    broken = tmp_path / "broken.csv"
    broken.write_text("text\na\n" + "b,c\n", encoding="utf-8")
    assert_user_error(run("predict", broken, "-o", out, "-m", tiny_bert), "broken.csv, row 2")
    assert out.read_text(encoding="utf-8") == "precious\n"


@pytest.mark.slow
def test_killed_run_resumes_with_every_row_once_in_order(tiny_bert, tmp_path):
    n = 4_000
    source = _write_csv(tmp_path / "big.csv", n)
    out = tmp_path / "out.jsonl"
    parts = tmp_path / "out.jsonl.parts"
    proc = popen("predict", source, "-o", out, "-m", tiny_bert, "--chunk-rows", "50")
    deadline = time.monotonic() + 120
    while len(list(parts.glob("part-*.jsonl"))) < 3 and time.monotonic() < deadline:
        assert proc.poll() is None, "the run finished before it could be interrupted"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    done = len(list(parts.glob("part-*.jsonl")))
    assert 3 <= done < n // 50

    assert_user_error(run("predict", source, "-o", out, "-m", tiny_bert, "--chunk-rows", "50"), "--resume")
    assert_user_error(
        run("predict", source, "-o", out, "-m", tiny_bert, "--chunk-rows", "60", "--resume"), "chunk_rows"
    )
    result = run("predict", source, "-o", out, "-m", tiny_bert, "--chunk-rows", "50", "--resume")
    assert result.returncode == 0, result.stderr
    assert "from the interrupted run" in result.stderr
    ids = [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert ids == [str(i) for i in range(n)]
    assert not parts.exists()


@pytest.mark.slow
def test_chunked_long_texts_report_their_windows(tiny_bert, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("good\n" + "the film was good but the story was boring " * 8 + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = run("predict", source, "-o", out, "-m", tiny_bert, "--long-text", "chunk", "--max-length", "16")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["windows"] == 1 and rows[1]["windows"] > 1
    assert set(rows[0]) == {"text", "label", "score", "windows"}
