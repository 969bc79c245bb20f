"""A real run the report tests share: the exported digits CNN with labelled data and a chain
whose every prefix is a variant."""

import numpy as np
import pytest
from figures import QUICK_MEASURE

from optimize.api import run
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe
from passes.onnxscript_optimize import OnnxscriptOptimize
from passes.quantize_static import QuantizeStatic

QUICK = {**QUICK_MEASURE, "threads": (1,)}  # one thread setting: half the timing
# Every prefix is a variant: the original, simplified, and simplified then quantized. The
# lossless step comes first so that the chain goes on wherever int8 runs slower than float.
CHAINS = [Chain((OnnxscriptOptimize(), QuantizeStatic()), "simplified, then int8")]


@pytest.fixture(scope="package")
def finished(tmp_path_factory, digits, digits_cnn_onnx):
    """One real run on the exported digits CNN, with labelled evaluation data."""
    folder = tmp_path_factory.mktemp("html")
    model = digits_cnn_onnx
    np.savez(folder / "eval.npz", x=digits.test_x[:200], labels=digits.test_y[:200])
    np.savez(folder / "calibration.npz", x=digits.train_x[:128])
    results = run(
        Recipe(
            model=model,
            out=folder / "out",
            data={"eval": folder / "eval.npz", "calibration": folder / "calibration.npz"},
            chains=CHAINS,
            builtin=False,
            measure=QUICK,
        )
    )
    return results
