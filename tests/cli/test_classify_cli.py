import json

import pytest

import clearpipe
from cli.helpers import assert_user_error, run


@pytest.mark.slow
def test_classify_prints_a_table(tiny_bert):
    result = run("classify", "the film was good", "bad", "--model", tiny_bert)
    assert result.returncode == 0, result.stderr
    assert "label" in result.stdout and "score" in result.stdout
    assert "the film was good" in result.stdout


@pytest.mark.slow
def test_classify_json_matches_python_api(tiny_bert):
    texts = ["the film was good", "bad", ""]
    result = run("classify", *texts, "--model", tiny_bert, "--json", "--top-k", "all")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    expected = clearpipe.load(tiny_bert)(texts, top_k=None)
    expected[2] = []  # an empty text: the CLI gives no labels (and says so on stderr)
    assert [[d["label"] for d in line] for line in lines] == [[d["label"] for d in e] for e in expected]


@pytest.mark.slow
def test_classify_reads_stdin(tiny_bert):
    result = run("classify", "--model", tiny_bert, "--json", stdin="good\nbad\n")
    assert result.returncode == 0, result.stderr
    assert [set(json.loads(line)) for line in result.stdout.splitlines()] == [{"label", "score"}] * 2


@pytest.mark.slow
def test_user_errors_exit_2_without_traceback(tiny_bert, tmp_path):
    assert_user_error(run("classify", "x", "--model", tmp_path / "missing"), "no such model folder")
    assert_user_error(run("classify", "x", "--model", tmp_path), "no config.json")
    assert_user_error(run("classify", "x", "--model", tiny_bert, "--top-k", "zero"), "--top-k")
    assert_user_error(run("classify", "x", "--model", tiny_bert, "--max-length", "100000"), "max_length")
    assert_user_error(run("classify", "x", "--model", tiny_bert, "--batch-size", "0"))
    assert_user_error(run("nonsense-command"))


def test_version_and_help():
    assert run("--version").stdout.strip() == f"clearpipe {clearpipe.__version__}"
    assert "classify" in run("--help").stdout


@pytest.mark.slow
def test_int8_with_and_without_recheck_matches_the_python_api(tiny_bert):
    texts = ["the film was good", "bad", "a long and winding story"]
    for flag, recheck in (("--recheck", True), ("--no-recheck", False)):
        result = run(
            "classify", *texts, "--model", tiny_bert, "--dtype", "int8", flag, "--json", "--top-k", "all"
        )
        assert result.returncode == 0, result.stderr
        expected = clearpipe.load(tiny_bert, dtype="int8", recheck=recheck)(texts, top_k=None)
        assert [json.loads(line) for line in result.stdout.splitlines()] == json.loads(json.dumps(expected))
