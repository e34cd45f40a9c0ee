# Two commands do everything:  `make report` (the main job) and `make test` (every test).
# Images are found through CALTECH101_DIR, then data/raw/, else downloaded (see README).

PYTHON ?= python3
VENV   := .venv
VENV_TORCH := .venv-torch
BIN    := $(VENV)/bin
# The installer: uv when it is on PATH (the same pinned versions; measured 12 s instead of 55 s for
# requirements.txt into a fresh venv, 1.3 s with its cache warm; docs/performance.md), else pip. An existing venv is
# kept when the requirements change (both installers then install what changed).
UV := $(shell command -v uv 2>/dev/null)
ifneq ($(UV),)
NEW_VENV = $(UV) venv --quiet --seed --allow-existing --python $(PYTHON) $(VENV)
INSTALL  = $(UV) pip install --quiet --python $(BIN)/python
else
NEW_VENV = $(PYTHON) -m venv $(VENV) && $(BIN)/python -m pip install --quiet --upgrade pip
INSTALL  = $(BIN)/python -m pip install --quiet
endif
# The analysis notebooks are numbered; the explorer (notebooks/explore.ipynb) is interactive: committed without
# outputs, executed by nbval only.
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: help report notebooks pdf compare compare-other-arithmetic test test-other-classes test-unit-then-first-notebooks unit lint bench bench-backends scale localisation venv venv-torch test-torch testdeps clean-cache

## help: list the targets with what each does (these "##" comments)
help:
	@sed -n 's/^## //p' $(MAKEFILE_LIST)

## report: set up the venv, execute every notebook (regenerates figures/ and results/), build the PDF
report: notebooks
	$(MAKE) pdf

## pdf: build report/report.pdf from results/ and figures/ only (no training)
pdf: venv
	$(BIN)/python -m cnnlib.report.pdf

## notebooks: execute every notebook in place: 01-03 in order, then the rest two at a time (cnnlib/run/notebooks.py;
## CNNLIB_NOTEBOOK_JOBS=1 runs them one by one; the files are the same bytes either way)
notebooks: venv
	$(BIN)/python -m cnnlib.run.notebooks $(NOTEBOOKS)

## compare: compare the outputs in this checkout with the committed ones (cnnlib/run/reproduction.py): floats within the
## stated tolerance, counts, picks, decisions and printed numbers identical, figures within a pixel tolerance
compare: venv
	$(BIN)/python -m cnnlib.run.reproduction

## compare-other-arithmetic: re-execute notebook 03 (the VGG19 path) in a scratch copy of this checkout under a second
## arithmetic (CNNLIB_ARITHMETIC=native: TensorFlow's own choice of kernels and threads for this CPU), compare with
## the committed outputs (must pass), then plant changes (an accuracy, the best network, a figure panel, a printed
## digit) into copies of the outputs (each must fail)
SCRATCH ?= $(or $(TMPDIR),/tmp)/cnnlib-other-arithmetic
OTHER_ARITHMETIC := -u TF_ENABLE_ONEDNN_OPTS -u ONEDNN_MAX_CPU_ISA -u TF_NUM_INTRAOP_THREADS -u TF_NUM_INTEROP_THREADS CNNLIB_ARITHMETIC=native
compare-other-arithmetic: venv
	rm -rf $(SCRATCH) && mkdir -p $(SCRATCH)
	git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read -T - -cf - | tar -xf - -C $(SCRATCH)
	cd $(SCRATCH) && env $(OTHER_ARITHMETIC) PYTHONPATH=$(SCRATCH) CNNLIB_CACHE_DIR=$(CURDIR)/.cache \
		$(CURDIR)/$(BIN)/python -m cnnlib.run.notebooks notebooks/03_vgg19.ipynb
	$(BIN)/python -m cnnlib.run.reproduction --candidate $(SCRATCH)
	$(BIN)/python -m cnnlib.run.reproduction --plant-check $(SCRATCH)
	rm -rf $(SCRATCH)

## test: unit tests, then nbval re-executes every notebook and compares the outputs of every cell that does not
## train (cells tagged NBVAL_CHECK_OUTPUT: a cold run may print training-time warnings a warm one does not).
## Two chains run side by side (two make jobs; each test has its own cache folder): the other-classes test
## (one long chain of notebooks) and, beside it, the unit tests then nbval of notebooks 01-03 in order. Then
## the later notebooks (and the explorer) two at a time, whole notebooks per worker.
# A cell may run for up to an hour: a limit against hangs (notebook 08's training cell takes about 20-25 minutes cold
# on a 2-core AVX2 machine), not a timing test.
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=3600
test: venv testdeps
	$(MAKE) --no-print-directory -j 2 --output-sync=target test-other-classes test-unit-then-first-notebooks
	$(BIN)/python -m pytest $(NBVAL) -n 2 --dist loadscope $$($(BIN)/python -m cnnlib.run.notebooks --list-part together --explorer)

# the two chains of `make test` (output printed when each one ends)
test-other-classes: venv testdeps
	$(BIN)/python -m pytest -m notebooks tests
	$(MAKE) --no-print-directory test-jax
test-unit-then-first-notebooks: venv testdeps
	$(BIN)/python -m pytest -m "not notebooks" tests
	$(BIN)/python -m pytest $(NBVAL) $$($(BIN)/python -m cnnlib.run.notebooks --list-part in-order)

## lint: ruff (settings in pyproject.toml)
lint: testdeps
	$(BIN)/ruff check
	$(BIN)/ruff format --check

## bench: performance benchmarks (print tables, write results/benchmarks.json; about 20 minutes)
bench: venv
	$(INSTALL) -r requirements-dev.txt
	$(BIN)/python benchmarks/run_all.py

## unit: unit tests only (fast: two processes; the keras.applications zoo test and the browser test run in make test)
unit: venv testdeps
	$(BIN)/python -m pytest -n 2 tests -m "not zoo and not notebooks and not browser and not cross_backend"

## test-jax: the tests marked `backends` once more on JAX (part of make test, whose unit tests compare TensorFlow with JAX)
test-jax: venv testdeps
	KERAS_BACKEND=jax $(BIN)/python -m pytest tests -m "backends and not cross_backend"

## venv-torch: optional second environment for Keras's PyTorch backend: .venv-torch sees .venv's packages and adds
## requirements-torch.txt (torch's CPU wheel, about 0.9 GB installed); not part of make test or CI
venv-torch: $(VENV_TORCH)/.installed
$(VENV_TORCH)/.installed: $(VENV)/.testdeps requirements-torch.txt
	$(BIN)/python -m venv $(VENV_TORCH)
	$(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > \
		$$($(VENV_TORCH)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/cnnlib_venv.pth
	# and .venv's Jupyter data files: JupyterLab looks for extensions (the widget manager the explorer needs),
	# kernels and nbconvert templates under its own prefix's share/jupyter
	mkdir -p $(VENV_TORCH)/share && ln -sfn $(CURDIR)/$(VENV)/share/jupyter $(VENV_TORCH)/share/jupyter
	$(VENV_TORCH)/bin/python -m pip install --quiet -r requirements-torch.txt
	touch $@

## test-torch: the tests marked `backends` on PyTorch, PyTorch against TensorFlow (tests/test_backend.py) and the
## explorer in a real browser on PyTorch (3 min)
test-torch: venv-torch
	KERAS_BACKEND=torch $(VENV_TORCH)/bin/python -m pytest tests -m "backends or browser"

## bench-backends: the same methods timed on TensorFlow, JAX and (with .venv-torch) PyTorch; results/benchmarks.json
bench-backends: venv testdeps
	$(BIN)/python benchmarks/bench_backends.py

## localisation: the upsampling benchmark (synthetic marker images, 9 networks; about 15 min); not part of report or test
localisation: venv
	$(BIN)/python -m cnnlib.run.localisation --record-benchmark

## scale: the all-categories run (every class folder; 30 train incl. 5 val, <= 50 test per class); not part of report or test
scale: venv
	$(BIN)/python -m cnnlib.run.scale --record-benchmark

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	$(NEW_VENV)
	$(INSTALL) -r requirements.txt
	$(INSTALL) --no-deps -e .
	touch $@

## testdeps: requirements-dev.txt (tf-keras-vis, the peer the tests compare against; ruff), never needed by users
testdeps: $(VENV)/.testdeps
$(VENV)/.testdeps: $(VENV)/.installed requirements-dev.txt
	$(INSTALL) -r requirements-dev.txt
	touch $@

## clean-cache: forget decoded images, features and trained models (they are rebuilt)
clean-cache:
	rm -rf .cache
