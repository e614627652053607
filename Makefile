# Everything a fresh machine needs: `make demo` and `make test` create .venv and install.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python examples/demo.py

lint: install
	$(BIN)/ruff check src tests benchmarks examples

# TensorFlow and Triton cannot share a process (an LLVM option clash aborts it), so the
# TensorFlow tests run in a pytest process of their own.
test: install lint
	$(BIN)/python -m pytest -q -n 2 tests --ignore=tests/tf \
		--doctest-modules src/softorder/_src/ops.py src/softorder/_src/isotonic/api.py
	$(BIN)/python -m pytest -q -n 2 tests/tf \
		--doctest-modules src/softorder/_src/tf_frontend.py src/softorder/_src/tf_layers.py

bench: install
	$(BIN)/python benchmarks/bench_numpy.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
