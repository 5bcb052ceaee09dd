# Two commands do all the set-up on a fresh machine:
#   make demo   create .venv, install genlab (CPU PyTorch where there is no GPU), run the demo
#   make test   the same install, then the test suite
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.genlab-installed
# The CPU build of PyTorch where there is no NVIDIA GPU (this pin resolves to the local CPU wheel
# on the project's machines); the default CUDA-enabled build where there is one. Elsewhere, get
# the CPU build with: make demo TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH ?= $(if $(shell command -v nvidia-smi 2>/dev/null),torch>=2.2,torch==2.13.0)
TORCH_PIP_ARGS ?=

.PHONY: install demo test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PIP_ARGS) "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev,serve]"
	touch $(STAMP)

demo: install
	$(VENV)/bin/genlab demo

test: install
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
