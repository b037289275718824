# Painless GMM. `make book` and `make test` are all a fresh clone needs (Python 3.11+ and make).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: book test unit nbval build browser lint workflows notebooks lab bench clean

book: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going
	@echo "The book is in _build/html: open $(CURDIR)/_build/html/index.html"

# Every test: lint, unit and property tests, every notebook under nbval, the book built with
# warnings as errors, then the browser checks of the built pages and of JupyterLab.
test: $(STAMP) lint unit nbval build browser

$(STAMP): requirements.txt requirements-test.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $(STAMP)

lint: $(STAMP) workflows
	$(BIN)/ruff check .

# The GitHub workflows cannot run here: check them statically, offline (schema, then zizmor's
# default audits, which want every action pinned to a commit hash).
workflows: $(STAMP)
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/zizmor --offline .github/workflows/

unit: $(STAMP)
	$(BIN)/pytest tests --ignore=tests/browser

nbval: $(STAMP)
	$(BIN)/pytest --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:randomly book

build: $(STAMP)
	$(BIN)/jupyter-book build . -W -n --keep-going

browser: $(STAMP)
	$(BIN)/pytest tests/browser

# Execute every notebook in place and strip volatile metadata (NB=book/x.ipynb for one).
notebooks: $(STAMP)
	$(BIN)/python tools/run_notebooks.py $(NB)

# JupyterLab on the chapters; as root (containers) it needs --allow-root to start. Saving a
# chapter keeps its committed metadata (book/_ext/lab_hooks.py).
lab: $(STAMP)
	$(BIN)/python -m jupyterlab book \
		--ContentsManager.pre_save_hook=book._ext.lab_hooks.keep_metadata \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# Per-iteration table, a whole photo fit and peak memory; writes benchmarks/results.{json,md}.
# OpenBLAS picks its own kernel for this run only; the compiled floor needs numba (optional).
bench: $(STAMP)
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE $(BIN)/python benchmarks/bench_fit.py

clean:
	rm -rf _build .pytest_cache .hypothesis
