"""Awkward but reasonable input, through the CLI as a user runs it: outputs that cannot be written,
exported folders where a checkpoint belongs, blank labels and files that are not UTF-8. Each ends
in a right answer or in one `clearpipe: error:` line (exit 2), never in a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.helpers import assert_user_error, run

TEXTS = ["a good film", "a bad film", "great story", "awful plot", "loved the actors", "boring scenes"]


def labelled(path: Path, rows: int = 60, encoding: str = "utf-8", blank_row: int | None = None) -> Path:
    """A CSV of `rows` texts with integer labels 0/1; `blank_row` (1-based) gets an empty label."""
    lines = ["text,label"]
    for i in range(1, rows + 1):
        label = "" if i == blank_row else str(i % 2)
        lines.append(f"{TEXTS[i % len(TEXTS)]} {'café' if encoding != 'utf-8' else 'cafe'} {i},{label}")
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return labelled(tmp_path_factory.mktemp("data") / "reviews.csv")


@pytest.fixture(scope="module")
def latin(tmp_path_factory) -> Path:
    return labelled(tmp_path_factory.mktemp("latin") / "latin.csv", encoding="latin-1")


@pytest.fixture(scope="module")
def exported(tiny_bert, tmp_path_factory) -> Path:
    """An ONNX export of the tiny model."""
    output = tmp_path_factory.mktemp("export") / "onnx"
    done = run("export", tiny_bert, "-o", output, timeout=300)
    assert done.returncode == 0, done.stderr
    return output


@pytest.fixture()
def blocker(tmp_path) -> Path:
    """A regular file: nothing can be created under it, even by root."""
    path = tmp_path / "notes.txt"
    path.write_text("not a folder\n", encoding="utf-8")
    return path


COMMANDS = {
    "predict": lambda model, data, out: ["predict", data, "-m", model, "-o", out / "out.csv"],
    "train": lambda model, data, out: ["train", data, "--base", model, "-o", out / "model"],
    "calibrate": lambda model, data, out: ["calibrate", model, data, "-o", out / "copy"],
    "export": lambda model, data, out: ["export", model, "-o", out / "onnx"],
    "evaluate --plots": lambda model, data, out: ["evaluate", model, data, "--plots", out / "plots"],
    "trace --html": lambda model, data, out: ["trace", "a good film", "-m", model, "--html", out / "t.html"],
}


@pytest.mark.slow
@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "trace --html"])  # it had its check
def test_output_under_a_file_is_one_line(command, tiny_bert, data, blocker):
    done = run(*COMMANDS[command](tiny_bert, data, blocker))
    assert_user_error(done, str(blocker.name))
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["calibrate", "trace --html"])
def test_output_in_proc_is_one_line(command, tiny_bert, data):
    done = run(*COMMANDS[command](tiny_bert, data, Path("/proc")))  # a folder not even root writes in
    assert_user_error(done, "cannot write", "/proc")


def test_trace_html_given_a_folder_asks_for_a_file(tiny_bert, tmp_path):
    done = run("trace", "a good film", "-m", tiny_bert, "--html", tmp_path)
    assert_user_error(done, f"--html {tmp_path} is a folder", "trace.html")


@pytest.mark.slow
def test_an_export_is_neither_exported_again_nor_trained(exported, data, tmp_path):
    again = run("export", exported, "-o", tmp_path / "again")
    assert_user_error(again, f"{exported} is a folder written by `clearpipe export`", "exported again")
    assert "pass the checkpoint it was exported from" in again.stderr
    trained = run("train", data, "--base", exported, "-o", tmp_path / "model")
    assert_user_error(trained, "cannot be trained (--base)", "pass the checkpoint it was exported from")
    assert not (tmp_path / "again").exists() and not (tmp_path / "model").exists()


@pytest.mark.slow
@pytest.mark.parametrize("command", ["evaluate", "calibrate"])
def test_one_blank_label_drops_that_row_only(command, tiny_bert, tmp_path):
    path = labelled(tmp_path / "blank.csv", rows=80, blank_row=7)
    extra = ["-o", tmp_path / "copy"] if command == "calibrate" else []
    done = run(command, tiny_bert, path, *extra)
    assert done.returncode == 0, done.stderr
    assert "dropped 1 rows: missing label (rows 7)" in done.stdout
    if command == "evaluate":
        assert done.stdout.startswith("79 rows: accuracy")


TRAIN_FAST = ["--max-length", "16", "--epochs", "1", "--no-bf16", "--no-calibrate"]


@pytest.mark.slow
@pytest.mark.parametrize("command", ["evaluate", "calibrate", "train", "export --check"])
def test_latin1_table_needs_and_takes_encoding(command, tiny_bert, latin, tmp_path):
    args = {
        "evaluate": ["evaluate", tiny_bert, latin],
        "calibrate": ["calibrate", tiny_bert, latin, "-o", tmp_path / "copy"],
        "train": ["train", latin, "--base", tiny_bert, "-o", tmp_path / "model", *TRAIN_FAST],
        "export --check": ["export", tiny_bert, "-o", tmp_path / "onnx", "--check", latin],
    }[command]
    refused = run(*args)
    assert_user_error(refused, f"{latin}", "cannot decode", "pass --encoding")
    done = run(*args, "--encoding", "latin-1", timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_predict_reads_utf16(tiny_bert, tmp_path):
    path = tmp_path / "wide.csv"
    path.write_bytes("text\r\nnaïve film\r\nbad film\r\n".encode("utf-16"))
    done = run("predict", path, "-m", tiny_bert, "-o", tmp_path / "out.csv", "--encoding", "utf-16")
    assert done.returncode == 0, done.stderr
    assert "naïve film" in (tmp_path / "out.csv").read_text(encoding="utf-8")


@pytest.mark.slow
def test_predict_reads_cr_only_lines_and_refuses_deep_json(tiny_bert, tmp_path):
    mac = tmp_path / "mac.csv"
    mac.write_bytes(b"text\rgood film\rbad film\r")
    done = run("predict", mac, "-m", tiny_bert, "-o", tmp_path / "out.csv")
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()) == 3
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    assert_user_error(run("predict", deep, "-m", tiny_bert, "-o", tmp_path / "deep.csv"), "nested too deeply")


@pytest.mark.slow
def test_train_refuses_one_class_and_empty_texts_before_training(tmp_path):
    one = tmp_path / "one.csv"
    one.write_text("text,label\n" + "".join(f"film {i},pos\n" for i in range(30)), encoding="utf-8")
    done = run("train", one, "-o", tmp_path / "model")
    assert_user_error(done, 'every row has the label "pos"', "two classes or more")
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n" + "".join(f" ,{i % 2}\n" for i in range(30)), encoding="utf-8")
    assert_user_error(run("train", empty, "-o", tmp_path / "model"), "every row's text is empty")
    assert not (tmp_path / "model").exists()
