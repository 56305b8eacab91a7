# evse-stack: the README's commands. Only Python 3.11 (with venv) is needed on the machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
LOCK   := requirements.lock

.PHONY: install install-dev run test test-fast bench demo clean regen lock wheel dist

# What the product needs to run, exactly as locked (versions and hashes), and the product itself.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

# The test and development tools on top (pytest, hypothesis, the `ocpp` package, pip-tools, ...).
$(DEV_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

run: $(STAMP)
	$(BIN)/evse demo

# The whole suite. Most tests wait on sockets, processes and timers rather than the CPU, so
# three workers share the two cores of the development and CI machines.
TEST_WORKERS ?= 3

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# Domain, codec and the other tests that open no socket, start no process and sleep for
# nothing (tests/fast_tier.py enforces it; property tests run a fifth of their examples).
FAST_TESTS := tests/domain tests/test_messages.py tests/test_layering.py tests/test_toml_text.py \
              tests/bootstrap/test_definitions.py tests/bootstrap/test_config.py \
              tests/bootstrap/test_compose.py tests/bootstrap/test_certificates.py tests/adapters/test_openevse_rapi.py \
              tests/adapters/test_sqlite_storage.py tests/integration/test_device_model_upgrade.py

test-fast: $(DEV_STAMP)
	$(BIN)/python -m pytest -p tests.fast_tier $(FAST_TESTS)

bench: $(DEV_STAMP)
	$(BIN)/python -m devtools.bench

regen: $(DEV_STAMP)
	$(BIN)/python -m devtools.gen_messages

# Refresh the lock file of the runtime dependencies (pip-tools) after changing them in
# pyproject.toml; commit the result. Index options come from pip's own configuration.
lock: $(DEV_STAMP)
	$(BIN)/pip-compile --quiet --generate-hashes --strip-extras --allow-unsafe --no-emit-index-url \
	    --no-emit-find-links --output-file $(LOCK) pyproject.toml

# What a board installs (README "Installing on a board"): the wheel, the lock file and examples/.
wheel: $(STAMP)
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .

dist: wheel
	cp $(LOCK) dist/
	rm -rf dist/examples && cp -r examples dist/examples

clean:
	rm -rf $(VENV) build dist *.egg-info
