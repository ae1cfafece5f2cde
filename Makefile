# The two commands of the README: `make demo` (set up, then build a lakehouse from generated data)
# and `make test` (set up, then run the test suite); `make test-fast` is the inner loop (lint, tests/unit).
VENV ?= .venv
STEDI := $(VENV)/bin/stedi
DEMO_HOME ?= lakehouse
DEMO_DATA ?= demo-data
SCALE ?= 1
PYTEST_ARGS ?=

.PHONY: setup setup-dev demo test test-fast mutate lock test-latest screenshots clean

setup:
	@scripts/setup.sh

setup-dev:
	@STEDI_EXTRAS=dev,spark scripts/setup.sh

demo: setup
	$(STEDI) keygen --if-missing
	$(STEDI) generate --out $(DEMO_DATA) --scale $(SCALE) --seed 0
	$(STEDI) --home $(DEMO_HOME) ingest $(DEMO_DATA)
	$(STEDI) --home $(DEMO_HOME) run
	$(STEDI) --home $(DEMO_HOME) tables
	$(STEDI) --home $(DEMO_HOME) sql "select count(*) as ml_rows, count(distinct customer_key) as customers from machine_learning_curated"

test: setup-dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# No lakehouse, no engine (tests/unit/conftest.py holds them to it): a few seconds.
test-fast: setup-dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest tests/unit $(PYTEST_ARGS)

# Deliberate small bugs in the modules that hold stedi's promises (consent, the ML join, erasure, suppression, the SQL
# sandbox, the writer lock, key-level updates, the reconciliation), one at a time in a copy of src/ and tests/, each
# run against the tests that must catch it (scripts/mutate.py; docs/reliability.md). Not part of `make test` or CI:
# run it before calling a change to those modules done. MUTATIONS="name ..." runs some (--list names them).
MUTATIONS ?=
mutate: setup-dev
	$(VENV)/bin/python scripts/mutate.py $(MUTATIONS)

# The lock (uv.lock, and requirements/*.txt exported from it) changes only on purpose: this resolves the newest
# versions pyproject.toml's ranges allow. Then run `make test` on it before you commit it (docs/dependencies.md).
lock: setup-dev
	UV=$(VENV)/bin/uv scripts/lock.sh --upgrade

# The suite against the newest versions the ranges allow, in a venv of its own (.venv-latest), not the lock:
# finds upstream drift on our schedule. Not part of CI. The check that the venv holds the locked versions is
# left out: here it cannot hold.
LATEST ?= .venv-latest
test-latest:
	rm -rf $(LATEST)
	$${PYTHON:-python3} -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev,spark]"
	$(LATEST)/bin/python -m pip freeze --exclude-editable > $(LATEST)/versions.txt
	$(LATEST)/bin/ruff check src tests bench
	$(LATEST)/bin/mypy
	$(LATEST)/bin/python -m pytest $(PYTEST_ARGS) --deselect tests/integration/test_packaging.py::test_the_venv_holds_exactly_the_locked_versions

# The README's pictures of the report and of `stedi serve`, taken by headless Chromium (docs/img/).
screenshots: setup-dev
	$(VENV)/bin/python scripts/screenshots.py --out docs/img

clean:
	rm -rf $(DEMO_HOME) $(DEMO_DATA) .pytest_cache
