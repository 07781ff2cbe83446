# The CPU build of torch is installed first so that nothing pulls a multi-GB CUDA build.
# On your own machine set TORCH to what pytorch.org gives for your platform, e.g. TORCH="torch".
PYTHON ?= python3
TORCH ?= torch==2.13.0

.PHONY: install demo test bench

install:
	$(PYTHON) -m pip install --quiet "$(TORCH)"
	$(PYTHON) -m pip install --quiet -e ".[test]"

demo: install
	$(PYTHON) -m riskmin train

test: install
	$(PYTHON) -m pytest

bench: install
	$(PYTHON) -m pip install --quiet -e ".[bench]"
	$(PYTHON) -m benchmarks
