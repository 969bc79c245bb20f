"""The compatibility suite, small: every architecture of the zoo in one save form, every
save form at least twice, each run end to end and its best.onnx matching the original on
fresh inputs. benchmarks/compatibility.py runs the whole matrix at full size."""

import pytest
from cells import run_cell
from figures import QUICK_MEASURE

from optimize.config.chains import Chain
from passes.ort_graph import OrtGraphOptimize

pytest.importorskip("transformers")

# (architecture, save form): each architecture once, the forms spread over them.
CELLS = [
    ("resnet", "pt2"),
    ("mobilenet", "onnx_dynamo"),
    ("efficientnet", "torchscript_traced"),
    ("vit", "pt2_keywords"),
    ("convnext", "pickle"),
    ("deeplab", "onnx_torchscript"),
    ("bert", "pt2_keywords"),
    ("distilbert", "onnx_dynamo"),
    ("gpt2", "pt2"),
    ("lstm", "torchscript_scripted"),
    ("gru", "onnx_torchscript"),
    ("two_outputs", "torchscript_scripted"),
    ("int64_and_bool", "pickle"),
    ("bert", "torchscript_traced"),
    # A pickled decoder given a named sequence: exported from generated inputs alone.
    ("gpt2", "pickle"),
]


@pytest.mark.parametrize(("architecture", "form"), CELLS, ids=[f"{a}-{f}" for a, f in CELLS])
def test_the_pick_runs_and_matches_the_original(architecture, form, tmp_path):
    cell = run_cell(
        architecture,
        form,
        "tiny",
        tmp_path,
        chains=[Chain((OrtGraphOptimize("basic"),), "folded")],
        builtin=False,
        measure=QUICK_MEASURE,
    )
    assert cell.outcome == "ok", f"{cell.outcome}: {cell.reason}"
    assert cell.cosine >= 0.999
