# Two entry points: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch; an unpinned torch pulls several GB of CUDA packages.
TORCH_PIN := torch==2.13.0

.PHONY: setup demo test lint clean

$(BIN)/optimize: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/optimize

demo: setup
	$(BIN)/python examples/save_example.py digits build
	$(BIN)/optimize run build/digits_cnn.pt2 --target cpu --out optimized/digits_cnn \
		--eval-data build/digits_cnn_eval.npz --calibration-data build/digits_cnn_calibration.npz

test: setup
	$(BIN)/ruff check optimize passes hardware tests examples
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) optimized
