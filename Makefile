# Two commands on a fresh machine: `make demo` and `make test`. Each bootstraps what it needs.
PY := .venv/bin/python
ARGS ?=
PYTEST_ARGS ?=

.PHONY: bootstrap demo test test-fast lint stack-up stack-down clean bench soak faults

bootstrap:
	@bash scripts/bootstrap.sh

demo: bootstrap
	$(PY) -m veille demo $(ARGS)

bench: bootstrap
	$(PY) -m bench $(ARGS)

# Ten minutes at half the sustained single-reading rate; memory of every process (docs/SOAK.md).
soak: bootstrap
	$(PY) -m bench._soak $(ARGS)

lint: bootstrap
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest -ra $(PYTEST_ARGS)

# Every fault scenario, full durations, 5 runs each; prints the table, rewrites docs/RELIABILITY.md.
faults: bootstrap
	$(PY) -m tests.faults --runs 5 $(ARGS)

test-fast: bootstrap
	$(PY) -m pytest -m "not slow and not timescale" $(PYTEST_ARGS)

stack-up: bootstrap
	$(PY) -m veille stack up

stack-down: bootstrap
	$(PY) -m veille stack down

clean: stack-down
	rm -rf .veille
