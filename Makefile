# Every target sets itself up: a fresh machine needs only `make demo` or `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint build-check bench readme clean fuzz docs

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip

# the extras give ranges; constraints-dev.txt pins what development and CI run (torch 2.13.0, the
# CPU build); MathJax for the documentation site comes from npm (docs/package-lock.json)
$(STAMP): $(PY) pyproject.toml constraints-dev.txt docs/package-lock.json
	$(PY) -m pip install -c constraints-dev.txt -e '.[dev]'
	npm ci --prefix docs
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/losskit demo

test: $(STAMP)
	$(PY) -m ruff check src tests benchmarks examples tools docs
	$(PY) -m mypy --follow-imports=silent --cache-dir .mypy_cache tests/typing/sample.py
	$(PY) -m pytest -n 2 -q

# the documentation site, strict: any warning (a broken reference too) fails the build
docs: $(STAMP)
	$(VENV)/bin/sphinx-build -W --keep-going -n -b html docs build/docs/html

# `make bench ARGS=--quick` for the tiny smoke-test sizes; ARGS go to benchmarks/run.py and benchmarks/diagnostics.py
bench: $(STAMP)
	$(PY) benchmarks/run.py $(ARGS)
	$(PY) benchmarks/diagnostics.py $(ARGS)

# the wheel must ship py.typed and the LICENSE, install and import in a clean virtual
# environment without extras, and run `losskit demo` there (timed; no matplotlib, so no plots)
build-check: $(STAMP)
	rm -rf dist build/wheel-venv build/demo-out
	$(PY) -m build --wheel --outdir dist .
	$(PY) tools/check_wheel.py contents dist/*.whl
	$(PYTHON) -m venv build/wheel-venv
	build/wheel-venv/bin/pip install -q dist/*.whl
	cd build && wheel-venv/bin/python -c "import losskit, numpy as np; print('wheel ok', losskit.__version__, float(losskit.mse(np.ones(3), np.zeros(3))))"
	cd build && wheel-venv/bin/losskit --help > /dev/null
	cd build && wheel-venv/bin/python ../tools/check_wheel.py demo --out demo-out

clean:
	rm -rf $(VENV) dist build .pytest_cache

# the README's loss table and losskit.torch's module classes (src/losskit/torch/loss_modules.py,
# by tools/generate_torch_modules.py) are generated from losskit.catalog(); tests check both
readme: $(STAMP)
	$(PY) tools/update_readme.py

# fuzzing the log readers and `losskit diagnose`: a long hypothesis run of the suite's fuzz
# tests (FUZZ_EXAMPLES per strategy, about 4 minutes), then coverage-guided atheris for
# FUZZ_SECONDS if it is installed (pip install atheris)
FUZZ_EXAMPLES ?= 3000
FUZZ_SECONDS ?= 300
fuzz: $(STAMP)
	LOSSKIT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -q -p no:cacheprovider tests/diagnostics/test_logs_fuzz.py
	@if $(PY) -c "import atheris" 2>/dev/null; then \
		$(PY) tests/diagnostics/fuzz_logs_atheris.py -max_total_time=$(FUZZ_SECONDS); \
	else echo "atheris is not installed: skipping the coverage-guided run (pip install atheris)"; fi
