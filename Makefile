# Every target sets up what it needs: a fresh machine needs only python3 and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# What tests/test_packaging.py installs into throwaway virtualenvs without an index: the
# build backend, Django, psycopg2-binary, psycopg 3, and psycopg2 built here from source
# (where pg_config is), as a site that compiles its driver has it.
WHEELHOUSE := $(VENV)/wheelhouse
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help

.PHONY: help
help: ## show this help
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/.installed: setup.cfg setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[binary,test,demo]'
	$(BIN)/python -m pip wheel --quiet --wheel-dir $(WHEELHOUSE) \
		'setuptools>=77' 'Django>=4.2,<6.2' 'psycopg2-binary>=2.9' 'psycopg[binary]>=3.1'
	if command -v pg_config >/dev/null; then \
		$(BIN)/python -m pip wheel --quiet --no-binary psycopg2 --wheel-dir $(WHEELHOUSE) 'psycopg2>=2.9'; \
	fi
	touch $@

.PHONY: install
install: $(BIN)/.installed ## create .venv and install warehouse with psycopg2-binary and its test and demo extras

.PHONY: test
test: $(BIN)/.installed ## run the whole suite on a real PostgreSQL (embedded unless DATABASE_URL is set)
	PYTHONDEVMODE=1 $(BIN)/python -W error::ResourceWarning -m pytest $(PYTEST_ARGS)

STRESS_REPORT ?= benchmarks/results/stress.json
STRESS_ENV := WAREHOUSE_STRESS_THREADS=16 WAREHOUSE_STRESS_OPERATIONS=2000 WAREHOUSE_STRESS_SECONDS=600

# pytest's exit status 5 (no test collected) means no test is marked stress: not a failure.
.PHONY: stress
stress: $(BIN)/.installed ## the load test at full size (figures to benchmarks/results/stress.json), the tests marked stress, hostile input x10
	$(STRESS_ENV) WAREHOUSE_STRESS_REPORT=$(STRESS_REPORT) PYTHONDEVMODE=1 \
		$(BIN)/python -W error::ResourceWarning -m pytest -p no:randomly -s tests/test_stress.py
	$(STRESS_ENV) PYTHONDEVMODE=1 $(BIN)/python -W error::ResourceWarning -m pytest -p no:randomly \
		-m stress --ignore=tests/test_stress.py tests || [ $$? -eq 5 ]
	HYPOTHESIS_PROFILE=stress PYTHONDEVMODE=1 $(BIN)/python -W error::ResourceWarning -m pytest \
		tests/test_hostile_input.py

.PHONY: lint
lint: $(BIN)/.installed ## ruff
	$(BIN)/python -m pip install --quiet 'ruff>=0.6'
	$(BIN)/ruff check warehouse tests testproject benchmarks dev_database.py
	$(BIN)/ruff format --check warehouse tests testproject benchmarks dev_database.py

.PHONY: demo
demo: $(BIN)/.installed ## run the test project on http://127.0.0.1:8000 (HOST=, PORT=) with an embedded PostgreSQL
	$(BIN)/python testproject/manage.py demo --host $(HOST) --port $(PORT)

.PHONY: matrix
matrix: $(BIN)/.installed ## run the suite on Django 4.2 / Python 3.10, 5.2 / 3.11 and 6.1 / 3.13 (nox)
	$(BIN)/python -m pip install --quiet nox
	$(BIN)/nox $(NOX_ARGS)

.PHONY: bench
bench: $(BIN)/.installed ## measure memory and speed of the storage, uploads, the reading connection, serving and the lifecycle
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/storage.py
	$(BIN)/python benchmarks/uploads.py
	$(BIN)/python benchmarks/reading_connection.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/lifecycle.py

.PHONY: clean
clean: ## remove the virtualenv and the embedded databases
	rm -rf $(VENV) .nox .pgdata
