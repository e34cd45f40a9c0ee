# Two commands do everything:  `make report` (the main job) and `make test` (every test).
# Images are found through CALTECH101_DIR, then data/raw/, else downloaded (see README).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The explorer (10_explore) is interactive: committed without outputs, executed by nbval only.
NOTEBOOKS := $(filter-out %_explore.ipynb,$(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb)))

.PHONY: report notebooks pdf test test-other-classes test-unit-then-first-notebooks unit lint bench scale venv testdeps clean-cache

## report: set up the venv, execute every notebook (regenerates figures/ and results/), build the PDF
report: notebooks
	$(MAKE) pdf

## pdf: build report/report.pdf from results/ and figures/ only (no training)
pdf: venv
	$(BIN)/python -m cnnlib.report

## notebooks: execute every notebook in place: 01-03 in order, then the rest two at a time (cnnlib/notebooks.py;
## CNNLIB_NOTEBOOK_JOBS=1 runs them one by one; the files are the same bytes either way)
notebooks: venv
	$(BIN)/python -m cnnlib.notebooks $(NOTEBOOKS)

## test: unit tests, then nbval re-executes every notebook and compares the outputs of every cell that does not
## train (cells tagged NBVAL_CHECK_OUTPUT: a cold run may print training-time warnings a warm one does not).
## Two chains run side by side (two make jobs; each test has its own cache folder): the other-classes test
## (one long chain of notebooks) and, beside it, the unit tests then nbval of notebooks 01-03 in order. Then
## the later notebooks (and the explorer) two at a time, whole notebooks per worker.
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=1800
test: venv testdeps
	$(MAKE) --no-print-directory -j 2 --output-sync=target test-other-classes test-unit-then-first-notebooks
	$(BIN)/python -m pytest $(NBVAL) -n 2 --dist loadscope $$($(BIN)/python -m cnnlib.notebooks --list --explorer | tail -n 1)

# the two chains of `make test` (output printed when each one ends)
test-other-classes: venv testdeps
	$(BIN)/python -m pytest -m notebooks tests
test-unit-then-first-notebooks: venv testdeps
	$(BIN)/python -m pytest -m "not notebooks" tests
	$(BIN)/python -m pytest $(NBVAL) $$($(BIN)/python -m cnnlib.notebooks --list | head -n -1)

## lint: ruff (settings in pyproject.toml)
lint: testdeps
	$(BIN)/ruff check
	$(BIN)/ruff format --check

## bench: performance benchmarks (print tables, write results/benchmarks.json; about 20 minutes)
bench: venv
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python benchmarks/run_all.py

## unit: unit tests only (fast: two processes; the keras.applications zoo test runs in make test)
unit: venv testdeps
	$(BIN)/python -m pytest -n 2 tests -m "not zoo and not notebooks"

## scale: the all-categories run (every class folder; 30 train incl. 5 val, <= 50 test per class); not part of report or test
scale: venv
	$(BIN)/python -m cnnlib.scale --record-benchmark

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

## testdeps: requirements-dev.txt (tf-keras-vis, the peer the tests compare against; ruff), never needed by users
testdeps: $(VENV)/.testdeps
$(VENV)/.testdeps: $(VENV)/.installed requirements-dev.txt
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

## clean-cache: forget decoded images, features and trained models (they are rebuilt)
clean-cache:
	rm -rf .cache
