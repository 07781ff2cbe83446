# torch is installed first, on its own, so that no other package pulls a build of it you did not choose.
# TORCH is the version; TORCH_INDEX the build: empty takes pip's default (on Linux the CUDA build, several GB with
# its libraries, for a machine with an NVIDIA GPU), https://download.pytorch.org/whl/cpu the CPU build (about 200 MB).
PYTHON ?= python3
TORCH ?= torch==2.13.0
TORCH_INDEX ?=

.PHONY: install install-test demo lint test bench

install:  # riskmin and what it needs to run: what the demo needs
	$(PYTHON) -m pip install --quiet "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PYTHON) -m pip install --quiet -e .

install-test: install  # and what the tests need: pytest, hypothesis, scikit-learn, scipy
	$(PYTHON) -m pip install --quiet -e ".[test]"

demo: install
	$(PYTHON) -m riskmin train

lint: install-test  # ruff (layout, style and mistakes) and mypy (types), configured in pyproject.toml; CI fails on any
	$(PYTHON) -m ruff format --check src
	$(PYTHON) -m ruff check src tests
	$(PYTHON) -m mypy

test: lint
	$(PYTHON) -m pytest

bench: install
	$(PYTHON) -m pip install --quiet -e ".[bench]"
	$(PYTHON) -m benchmarks
