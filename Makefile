# `make demo` and `make test` create .venv on first use and reuse it afterwards.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.spikesmith-installed
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test test-all venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) install --upgrade pip setuptools wheel
	# CPU build of torch that lies on disk; a bare `torch` would pull a CUDA build of several GB.
	$(PIP) install torch==2.13.0 "numpy<2"
	# lava-nc declares python<3.11; spikesmith.targets.lava.compat makes it import on 3.11.
	# Its dependencies resolve normally first (--ignore-requires-python would also accept releases
	# that need a newer Python), then lava-nc itself without dependencies.
	$(PIP) install "asteval>=0.9.31,<0.10" "networkx<=2.8.7" "numpy>=1.24.4,<2" "scikit-learn>=1.5,<2" "scipy>=1.10.1,<2"
	$(PIP) install --no-deps --ignore-requires-python lava-nc==0.10.0
	# norse's torchvision requirement breaks beside the CPU torch; norse itself is pure Python.
	$(PIP) install --no-deps norse==1.1.0
	# snnTorch, for the tests that compare its own spikes with ours (its other requirements are above).
	$(PIP) install --no-deps snntorch==1.0.0
	$(PIP) install -r requirements.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/spikesmith demo -o out/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

clean:
	rm -rf out
