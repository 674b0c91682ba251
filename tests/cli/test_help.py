"""`--help` reads in an 80-column terminal: every option starts its own line, nothing wraps past 80."""

from __future__ import annotations

import re

import pytest

from cli.helpers import env, run

COMMANDS = ["classify", "predict", "train", "evaluate", "serve", "trace", "export"]


def help_text(*args: str) -> str:
    result = run(*args, "--help")
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_fits_80_columns_with_one_option_per_line(command, monkeypatch):
    monkeypatch.setattr("cli.helpers.env", lambda: {**env(), "COLUMNS": "80"})
    text = help_text(*([command] if command else []))
    assert max(len(line) for line in text.splitlines()) <= 80
    # An option's names start a line (two spaces in), never split over two lines or cut with "…".
    options = re.findall(r"^  (-[-\w, /]+?)(?:  | <|$)", text, re.M)
    assert "…" not in text and "│" not in text
    assert any(o.startswith("-h, --help") or o.startswith("--help") for o in options)
    if command == "train":
        assert {"--base", "--output", "--text-column", "--epochs"} <= {
            name.strip() for o in options for name in re.split(r"[, /]+", o) if name.startswith("--")
        }
