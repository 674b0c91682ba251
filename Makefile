# Every target creates .venv when it is missing: torch is pinned and installed first so that
# pip never pulls the multi-GB CUDA build for a CPU machine.
PY := .venv/bin/python
TORCH ?= torch==2.13.0

.PHONY: venv test test-all lint demo bench clean

.venv/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

venv: .venv/.installed

# `make test`: everything but the tests marked slow (training runs, exports, real servers), in
# under 15 minutes on 2 cores; `make test-all` (what CI runs) adds them.
test: venv
	$(PY) -m ruff check src tests benchmarks recipes
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -m "not slow"

test-all: venv
	$(PY) -m ruff check src tests benchmarks recipes
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

lint: venv
	$(PY) -m ruff check src tests benchmarks recipes
	$(PY) -m ruff format --check src tests benchmarks recipes

demo: venv
	.venv/bin/clearpipe classify "I love this movie!" "What a waste of two hours." "It was fine, I guess."

bench: venv
	$(PY) benchmarks/throughput.py

clean:
	rm -rf .venv build dist .pytest_cache .ruff_cache
