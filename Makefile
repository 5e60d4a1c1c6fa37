# The two commands of the README:
#   make demo   set up, start both sandbox servers, run sync_all into the default DuckDB warehouse
#   make test   set up and run the whole test suite
# Everything installs from this repository's own files into .venv: the locked, hashed
# versions of requirements/ (see requirements/README.md), then the project itself.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench

DEMO_PERSONS ?= 5000
DEMO_SEED    ?= 7
PORT         ?= 3000
# Test files run side by side on this many workers (pytest-xdist; a file's tests stay on one
# worker, so its shared world is made once); 0 runs them one after the other in this process.
# PYTHONHASHSEED=0: the property tests draw the same examples every run (tests/conftest.py).
TEST_WORKERS ?= 2

.PHONY: setup demo test bench dev lock clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/test.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements/test.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The benchmark-only packages (Splink) join the test environment, never the runtime one.
$(BENCH_STAMP): $(STAMP) requirements/bench.lock
	$(PY) -m pip install --quiet --require-hashes -r requirements/bench.lock
	touch $(BENCH_STAMP)

demo: setup
	$(PY) scripts/demo.py --persons $(DEMO_PERSONS) --seed $(DEMO_SEED)

test: setup
	PYTHONHASHSEED=0 $(PY) -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

bench: $(BENCH_STAMP)
	$(PY) bench/run_all.py

# The UI over the instance the demo records into (.dagster_home, made here on a fresh clone).
dev: setup
	mkdir -p .dagster_home
	test -f .dagster_home/dagster.yaml || cp dagster.yaml .dagster_home/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/.dagster_home $(VENV)/bin/dagster dev -w workspace.yaml -p $(PORT)

# Re-resolve the three lock files from pyproject.toml's ranges (needs uv on the PATH).
lock:
	for set in runtime test bench; do \
	  case $$set in runtime) extras="";; test) extras="--extra test";; \
	                bench) extras="--extra test --extra bench";; esac; \
	  uv pip compile pyproject.toml $$extras --generate-hashes --python-version 3.11 \
	    --python-platform x86_64-manylinux_2_28 --no-header --quiet -o requirements/$$set.lock; \
	done

clean:
	rm -rf data .dagster_home .tmp_dagster_home_*
