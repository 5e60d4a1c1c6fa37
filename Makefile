# The two commands of the README:
#   make demo   set up, start both sandbox servers, run sync_all into the default DuckDB warehouse
#   make test   set up and run the whole test suite
# Everything installs from this repository's own files into .venv.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

DEMO_PERSONS ?= 5000
DEMO_SEED    ?= 7

.PHONY: setup demo test bench dev clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

demo: setup
	$(PY) scripts/demo.py --persons $(DEMO_PERSONS) --seed $(DEMO_SEED)

test: setup
	$(PY) -m pytest -q -p no:cacheprovider

bench: setup
	$(PY) bench/run_all.py

dev: setup
	DAGSTER_HOME=$(CURDIR)/.dagster_home $(VENV)/bin/dagster dev -w workspace.yaml

clean:
	rm -rf data .dagster_home .tmp_dagster_home_*
