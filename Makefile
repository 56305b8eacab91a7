# evse-stack: the README's commands. Only Python 3.11 (with venv) is needed on the machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast bench demo clean regen

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/evse demo

# The whole suite. Most tests wait on sockets, processes and timers rather than the CPU, so
# three workers share the two cores of the development and CI machines.
TEST_WORKERS ?= 3

test: $(STAMP)
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# Domain, codec and the other tests that open no socket, start no process and sleep for
# nothing (tests/fast_tier.py enforces it; property tests run a fifth of their examples).
FAST_TESTS := tests/domain tests/test_messages.py tests/test_layering.py tests/test_toml_text.py \
              tests/bootstrap/test_definitions.py tests/bootstrap/test_config.py \
              tests/bootstrap/test_compose.py tests/bootstrap/test_certificates.py tests/adapters/test_openevse_rapi.py \
              tests/adapters/test_sqlite_storage.py tests/integration/test_device_model_upgrade.py

test-fast: $(STAMP)
	$(BIN)/python -m pytest -p tests.fast_tier $(FAST_TESTS)

bench: $(STAMP)
	$(BIN)/python -m devtools.bench

regen: $(STAMP)
	$(BIN)/python -m devtools.gen_messages

clean:
	rm -rf $(VENV) build *.egg-info
