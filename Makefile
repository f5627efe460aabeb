# Two commands do all the set-up on a fresh clone (Python 3.11+, no root):
#   make demo   - create .venv, install slowwave, run the pipeline on the bundled sample conversations
#   make test   - create .venv, install slowwave with test extras, run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow install bench clean-venv

demo: $(STAMP)
	$(BIN)/slowwave demo

# The longest files first (each takes 2-7 minutes), so the two workers end together; pytest collects a file
# named twice once.
LONG_TESTS = tests/test_flow.py tests/test_faults.py tests/test_forget.py tests/test_wake_loop.py \
	tests/test_tenants.py tests/test_prefect_server.py tests/test_gating.py

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile $(LONG_TESTS) tests

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; sys.exit("slowwave needs Python 3.11+, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $(STAMP)

bench: $(STAMP)
	$(BIN)/python bench/train.py
	$(BIN)/python bench/gate.py
	$(BIN)/python bench/sleep.py
	$(BIN)/python bench/curation.py --n 200000
	$(BIN)/python bench/contention.py
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/serve.py
	$(BIN)/python bench/tenants.py --tenants 1,2,4 --workers 1

clean-venv:
	rm -rf $(VENV)
