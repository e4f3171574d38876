# `make test` is all a fresh machine needs: it makes .venv, installs ncjax with its test extra, runs ruff, mypy and pytest.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run bench bench-quick bench-peers test test-slow install clean demo-models

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the project's metadata changes. setuptools warns on every editable install that a folder named
# like the package may shadow it: that folder is the package itself here, so the warning is filtered.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

# The whole mission on the embedded demo: a verdict, trigger pictures and report.json in ncjax_out/.
run: install
	$(BIN)/python -m ncjax.run --overwrite

# Step throughput (all labels at once vs one at a time), FLOPs, a whole scan, scaling; writes bench.json.
bench: install
	$(BIN)/python -m ncjax.bench

# The same parts in about a minute: a 2-epoch end-to-end scan, small widths, 2 rounds.
bench-quick: install
	$(BIN)/python -m ncjax.bench --quick

# The reference Neural Cleanse (../shared/peers, TensorFlow in its own .peer-venv, about 600 MB) and ncjax side by
# side on the real model, interleaved; adds 'peers' to bench.json. Needs ../shared; not part of make test.
PEER_PYTHON := .peer-venv/bin/python
$(PEER_PYTHON):
	$(PYTHON) -m venv .peer-venv
	$(PEER_PYTHON) -m pip install --quiet tensorflow-cpu tf_keras scipy h5py pillow

bench-peers: install $(PEER_PYTHON)
	$(BIN)/python -m ncjax.bench --peers --peer-python $(PEER_PYTHON)

# Lint and types first (ruff and mypy, configured in pyproject.toml): a finding fails the run before the tests start.
# Two workers, each taking whole test files (module fixtures built once): 5.5 instead of 8 minutes on 2 cores.
test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# Also the slow checks (full 43-label scans of the demo model and of its clean twin).
test-slow: install
	NCJAX_SLOW_TESTS=1 $(BIN)/python -m pytest -q

# Retrain the embedded demo models (about 10 minutes on a 2-core CPU); writes ncjax/demo/.
demo-models: install
	$(BIN)/python experiments/make_demo_models.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
