# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR := $(CURDIR)/.demo
PYTEST_ARGS ?=

.PHONY: demo test lint types imports unit bench diagram clean compile chromium screenshots

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

# Byte-compile our own packages: with PYTHONDONTWRITEBYTECODE set (as on this
# machine and in CI) every CLI start would otherwise compile them (~0.5 s).
compile: $(VENV)/.installed
	@$(BIN)/python -m compileall -q controller reconcilers migrations

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

demo: compile
	@rm -rf $(DEMO_DIR)
	@echo "== registering examples/blog as blog 'sample' (store: $(DEMO_DIR)/controller.db)"
	@CONTROLLER_DATA_DIR=$(DEMO_DIR) $(BIN)/controller blog add sample --source local:examples/blog
	@echo "== first reconcile"
	@CONTROLLER_DATA_DIR=$(DEMO_DIR) $(BIN)/controller reconcile --blog sample
	@echo "== second reconcile (converged: nothing to do)"
	@CONTROLLER_DATA_DIR=$(DEMO_DIR) $(BIN)/controller reconcile --blog sample
	@echo "== file states"
	@CONTROLLER_DATA_DIR=$(DEMO_DIR) $(BIN)/controller status --blog sample

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(VENV)/.installed-dev
	$(BIN)/mypy

imports: $(VENV)/.installed-dev
	$(BIN)/lint-imports

unit: $(VENV)/.installed-dev compile chromium
	$(BIN)/pytest -n 2 $(PYTEST_ARGS)

# Debian packages the tests and benchmarks drive: installed when missing and root.
apt_ensure = command -v $(1) >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	&& { apt-get install -y -q $(1) >/dev/null 2>&1 || { apt-get update -q >/dev/null \
	&& apt-get install -y -q $(1) >/dev/null; }; }; }

chromium:
	@$(call apt_ensure,chromium) || echo "chromium is not installed: the browser test will skip"

screenshots: $(VENV)/.installed-dev compile chromium
	CONTROLLER_SCREENSHOTS=$(CURDIR)/docs $(BIN)/pytest -q -p no:xdist tests/web/test_browser.py

test: lint types imports unit

# The peers come from the system packages.
bench: $(VENV)/.installed-dev compile
	@for tool in rsync rclone; do $(call apt_ensure,$$tool) \
		|| echo "$$tool is not installed: its benchmark rows will be skipped"; done
	$(BIN)/python -m bench

diagram: $(VENV)/.installed
	$(BIN)/python -c "from reconcilers.core.machine import document; print(document(), end='')" > docs/state-machine.md

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache .hypothesis
