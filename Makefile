# Entry points: `make demo`, `make test`, `make bench` and `make suite`. Each sets up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch; an unpinned torch pulls several GB of CUDA packages.
TORCH_PIN := torch==2.13.0

# Debian's headless Chromium and its driver, for the test that opens report.html.
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test bench suite lint clean

$(BIN)/optimize: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e '.[dev,prune,serve,hf,cluster]'
	touch $@

setup: $(BIN)/optimize

demo: setup
	$(BIN)/python examples/save_example.py digits build
	$(BIN)/optimize run build/digits_cnn.pt2 --target cpu --out optimized/digits_cnn \
		--eval-data build/digits_cnn_eval.npz --calibration-data build/digits_cnn_calibration.npz \
		--prune --finetune optimize.examples:finetune_digits

$(CHROMEDRIVER):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

test: setup $(CHROMEDRIVER)
	$(BIN)/ruff check optimize passes hardware tests examples
	$(BIN)/python -m pytest -q

# Longer measurements (tens of minutes on a small CPU); results in benchmarks/results/.
bench: setup
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/time_to_answer.py
	$(BIN)/python benchmarks/minilm.py
	$(BIN)/python benchmarks/precisions.py
	$(BIN)/python benchmarks/serving.py
	$(BIN)/python benchmarks/suite.py
	$(BIN)/python benchmarks/minilm_folder.py
	$(BIN)/python benchmarks/compatibility.py --size tiny --quick
	$(BIN)/python benchmarks/compatibility.py --size full --forms pt2 onnx_dynamo

# The suite alone: PyTorch, ONNX Runtime, Olive and the pick side by side (about 15 minutes).
suite: setup
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/suite.py

clean:
	rm -rf $(VENV) optimized
