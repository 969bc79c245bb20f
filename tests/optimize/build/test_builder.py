"""Variants: lineage, cache reuse, and failures that stay with their variant."""

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from figures import QUICK_MEASURE

from optimize.api import run
from optimize.build.builder import check_chain
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe
from optimize.errors import UserError
from passes.base import Outcome, Pass, PassContext, PassError
from passes.export import ExportToOnnx
from passes.ort_graph import OrtGraphOptimize

QUICK = QUICK_MEASURE


def _run(model, out, chains):
    return run(Recipe(model=model, out=out, chains=chains, builtin=False, measure=QUICK))


@dataclass(frozen=True)
class Explodes(Pass):
    """A pass that always fails, as a third-party pass may."""

    name = "explodes"

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        raise PassError("kaboom in the kernel table")


@dataclass(frozen=True)
class Truncates(Pass):
    """A pass that writes a corrupt model: it builds, but no runtime can open it."""

    name = "truncates"

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        data = src.read_bytes()
        (out_dir / "model.onnx").write_bytes(data[: len(data) // 2])
        return Outcome(out_dir / "model.onnx", changed=True)


@dataclass(frozen=True)
class Aborts(Pass):
    """A pass whose native code crashes the process, as a broken kernel may."""

    name = "aborts"

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        os.abort()


def test_failures_stay_with_their_variant(digits_cnn_onnx, tmp_path):
    chains = [
        Chain((OrtGraphOptimize("all"),), "works"),
        Chain((Explodes(), OrtGraphOptimize("basic")), "fails at its first step"),
        Chain((Truncates(),), "builds a model that cannot be opened"),
        Chain((Aborts(),), "crashes the process building it"),
    ]
    results = _run(digits_cnn_onnx, tmp_path / "out", chains)
    by_label = {v.label: v for v in results.variants}
    assert by_label["original"].status == "measured"
    assert by_label["ort_graph(level=all)"].status == "measured"
    exploded = by_label["explodes"]
    assert exploded.status == "failed"
    assert exploded.reason.startswith("explodes failed after the source: ")
    assert exploded.reason.endswith("kaboom in the kernel table")
    after = by_label["explodes → ort_graph(level=basic)"]
    assert after.status == "skipped" and "earlier step" in after.reason
    broken = by_label["truncates"]
    assert broken.status == "failed" and "does not load in ONNX Runtime" in broken.reason
    crashed = by_label["aborts"]
    assert crashed.status == "failed" and "crashed (SIGABRT)" in crashed.reason
    assert results.pick is not None and results.pick.status == "measured"
    report = (tmp_path / "out" / "report.md").read_text()
    assert "kaboom in the kernel table" in report


def test_rebuild_is_a_cache_hit_and_a_new_model_is_not(digits_cnn_onnx, tmp_path):
    chains = [Chain((OrtGraphOptimize("extended"),), "one pass")]
    first = _run(digits_cnn_onnx, tmp_path, chains)
    again = _run(digits_cnn_onnx, tmp_path, chains)
    assert [v.id for v in first.variants] == [v.id for v in again.variants]
    assert not first.variants[1].cached and again.variants[1].cached
    assert again.variants[1].steps == first.variants[1].steps

    changed = tmp_path / "changed.onnx"
    import onnx

    model = onnx.load(digits_cnn_onnx)
    weights = model.graph.initializer[0]
    array = onnx.numpy_helper.to_array(weights) * np.float32(1.01)
    weights.CopyFrom(onnx.numpy_helper.from_array(array, weights.name))
    onnx.save(model, changed)
    other = _run(changed, tmp_path, chains)
    assert other.variants[1].id != first.variants[1].id
    assert not other.variants[1].cached


def test_chain_kinds_are_checked_before_anything_runs():
    with pytest.raises(UserError, match="export needs a torch model but follows ort_graph"):
        check_chain("onnx", [OrtGraphOptimize("basic"), ExportToOnnx()])
    check_chain("torch", [ExportToOnnx(), OrtGraphOptimize("basic")])


def test_a_pass_with_nothing_to_do_is_not_tried_again(digits_cnn_onnx, tmp_path):
    from passes.quantize_int4 import QuantizeInt4

    # Blocks longer than any of the CNN's weights: int4 has nothing to quantize.
    chains = [Chain((QuantizeInt4(block_size=1024),), "nothing to do")]
    first = _run(digits_cnn_onnx, tmp_path / "out", chains)
    again = _run(digits_cnn_onnx, tmp_path / "out", chains)
    (skipped,) = [v for v in again.variants if v.steps == [] and v.label.startswith("quantize")]
    assert skipped.status == "skipped" and "at least 1024 rows" in skipped.reason
    assert skipped.cached and not first.variant(skipped.id).cached
