# pychat_db: every command a developer or CI runs. `make help` lists them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help install demo test lint typecheck codegen fuzz reliability bench clean

help:
	@echo "make install   create .venv with the project and its dev tools (idempotent)"
	@echo "make demo      install, then import examples/export into chat.db, verify it, print the summary"
	@echo "make test      install, then sqlfluff, ruff, mypy --strict, codegen --check and pytest"
	@echo "make codegen   regenerate pychat_db/generated/, schema snapshots and docs/schema.md"
	@echo "make fuzz      the long fuzz runs of the importer (export dirs and .isar files)"
	@echo "make reliability  every fault point, power-loss and concurrency trial (docs/reliability.md)"
	@echo "make bench     every benchmark (long: generates about 3 GB under /tmp)"

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(PY) -m tools.import examples/export --db chat.db --force
	$(PY) -m tools.verify examples/export --db chat.db --samples 50

lint: install
	$(VENV)/bin/sqlfluff lint schema queries
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy --strict

codegen: install
	$(PY) -m codegen

test: lint typecheck
	$(PY) -m codegen --check
	$(PY) -m pytest -q -m 'not slow'

fuzz: install
	PYCHAT_FUZZ_EXAMPLES=3000 $(PY) -m pytest -q -s tests/test_fuzz_import.py tests/test_fuzz_isar.py

reliability: install
	$(PY) -m pytest -q -s -m slow tests/test_faults_sql.py tests/test_faults_repos.py tests/test_faults_import.py \
		tests/test_powerloss_sql.py tests/test_powerloss_repos.py tests/test_powerloss_import.py tests/test_concurrency.py

bench: install
	$(PY) -m tools.bench memory
	$(PY) -m tools.bench repos
	$(PY) -m tools.bench import
	$(PY) -m tools.bench isar

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis chat.db chat.db-wal chat.db-shm
