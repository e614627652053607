# Everything a fresh machine needs: `make demo` and `make test` create .venv and install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck bench clean docs

$(STAMP): pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# torchsort, the reference implementation the tests compare gradients with
# (tests/torch/test_torch_torchsort_dropin.py) and the bench's main alternative. It is never a
# dependency of softorder. It ships only as a source distribution whose C++ extension builds on
# a CPU-only machine only without build isolation and with nvcc hidden (PATH without
# /usr/local/bin, CUDA_HOME empty): about 1.5 minutes on 2 cores. A failed build fails `make test`.
TORCHSORT := $(VENV)/.torchsort
$(TORCHSORT): $(STAMP)
	env PATH=$(abspath $(BIN)):/usr/bin:/bin CUDA_HOME= \
		$(BIN)/python -m pip install -q --no-deps --no-build-isolation torchsort==0.1.10
	touch $(TORCHSORT)

# KaTeX for the documentation site, served by the site itself (pinned in docs/_tools/package.json).
DOCS_JS := docs/_tools/node_modules/.package-lock.json
$(DOCS_JS): docs/_tools/package.json docs/_tools/package-lock.json
	npm ci --prefix docs/_tools --no-audit --no-fund
	touch $(DOCS_JS)

# The documentation site (mkdocs.yml), warnings as errors, into site/.
docs: install $(DOCS_JS)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

demo: install
	$(BIN)/python examples/demo.py

lint: install
	$(BIN)/ruff check src tests benchmarks examples experiments

typecheck: install
	$(BIN)/mypy src/softorder

# The main correctness suite is tests/cross: one body per property, run on NumPy, PyTorch and
# JAX in the first process and on TensorFlow (tests/tf/test_cross_tf.py) in the second.
# TensorFlow and Triton cannot share a process (an LLVM option clash aborts it), so the
# TensorFlow tests run in a pytest process of their own.
# tests/test_docs_site.py builds the documentation site strictly and opens every page in
# headless Chromium (.ci/run installs it); it keeps a screenshot of the home page.
test: install lint typecheck $(DOCS_JS) $(TORCHSORT)
	SOFTORDER_REQUIRE_TORCHSORT=1 $(BIN)/python -m pytest -q -n 2 tests --ignore=tests/tf \
		--doctest-modules src/softorder/_src/core/ops.py src/softorder/_src/core/isotonic_api.py \
		src/softorder/_src/frontends/torch/backend.py \
		src/softorder/_src/frontends/torch/frontend.py src/softorder/_src/frontends/torch/modules.py \
		src/softorder/_src/frontends/torch/router.py src/softorder/_src/frontends/torch/pruning.py \
		src/softorder/torchsort.py src/softorder/_src/frontends/jax/frontend.py \
		src/softorder/_src/frontends/jax/flax_router.py \
		src/softorder/numpy.py src/softorder/torch.py src/softorder/jax.py
	$(BIN)/python -m pytest -q -n 2 tests/tf \
		--doctest-modules src/softorder/_src/frontends/tensorflow/frontend.py src/softorder/_src/frontends/tensorflow/layers.py \
		src/softorder/tensorflow.py
	@echo "docs site: home page screenshot at artifacts/docs-site/home.png"

# `softorder bench` against every installed alternative. The alternatives go into the benchmark
# environment only, never into softorder's dependencies: those on PyPI from
# requirements-bench.txt (constrained by requirements-dev.txt), and torchsort, whose C++
# extension builds on a CPU-only machine only without build isolation and with nvcc hidden
# (PATH without /usr/local/bin, CUDA_HOME empty). A failed install drops that alternative: the
# bench lists it as not installed. The run regenerates docs/benchmarks.md and its plots.
bench: install $(TORCHSORT)
	-$(BIN)/python -m pip install -q -c requirements-dev.txt -r requirements-bench.txt
	$(BIN)/python -m softorder.bench --out bench-results --markdown docs/benchmarks.md

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site docs/_tools/node_modules artifacts
