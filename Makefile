# Entry points: `make demo`, `make test`, `make bench` and `make suite`. Each sets up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch; an unpinned torch pulls several GB of CUDA packages.
TORCH_PIN := torch==2.13.0
# optimum-intel, OpenVINO's exporter for language models, in an environment of its own that
# sees the project's packages behind its own: it pins transformers below 5.6 (the project's
# TorchScript export of BERT-style masks needs a newer one) and requires torchvision (the
# index's is built for CUDA torch). So it gets the transformers it was made for, no
# torchvision, and everything else (torch, openvino, nncf) from the project's environment.
EXPORTER := $(VENV)/optimum-intel
OPTIMUM_INTEL := optimum-intel==2.2.0 optimum==2.3.0 transformers==5.5.4 tokenizers==0.22.2 \
	huggingface-hub==1.21.0

# Debian's headless Chromium and its driver, for the test that opens report.html.
CHROMEDRIVER := /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup demo test bench suite lint clean

$(BIN)/optimize: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e '.[dev,prune,serve,hf,cluster,llm]' $(TORCH_PIN)
	$(PYTHON) -m venv --without-pip $(EXPORTER)
	$(BIN)/python -c "import site; print('import site; site.addsitedir(%r)' % site.getsitepackages()[0])" \
		> "$$($(EXPORTER)/bin/python -c 'import site; print(site.getsitepackages()[0])')/project_packages.pth"
	$(BIN)/pip --python $(EXPORTER)/bin/python install --quiet --no-deps $(OPTIMUM_INTEL)
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
	$(BIN)/python benchmarks/generative.py
	$(BIN)/python benchmarks/compatibility.py --size tiny --quick
	$(BIN)/python benchmarks/compatibility.py --size full --forms pt2 onnx_dynamo

# The suite alone: PyTorch, ONNX Runtime, Olive and the pick side by side (about 15 minutes).
suite: setup
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/suite.py

clean:
	rm -rf $(VENV) optimized
