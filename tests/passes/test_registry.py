"""The registry finds every pass of the package once, and the facts the tool reads off a
pass hold."""

import dataclasses
import inspect

import passes.quantize_dynamic
from passes.base import Pass
from passes.quantize_dynamic import QuantizeDynamic
from passes.quantize_int4 import QuantizeInt4
from passes.registry import CHAINABLE, PASSES, pass_class


def test_every_pass_class_is_found_under_its_name():
    assert pass_class("quantize_dynamic") is QuantizeDynamic
    assert all(issubclass(cls, Pass) and dataclasses.is_dataclass(cls) for cls in PASSES.values())
    # A pass's name is its file's name (export.py's is "export" too).
    assert all(cls.__module__ == f"passes.{name}" for name, cls in PASSES.items())
    defined = [
        cls
        for _, cls in inspect.getmembers(passes.quantize_dynamic, inspect.isclass)
        if issubclass(cls, Pass) and cls.__module__ == "passes.quantize_dynamic"
    ]
    assert defined == [QuantizeDynamic]


def test_lead_in_passes_cannot_be_chained():
    assert set(PASSES) - set(CHAINABLE) == {"export", "preprocess"}
    assert pass_class("no_such_pass") is None


def test_the_fallback_can_steer_weight_quantizers_only():
    assert QuantizeDynamic().repairable and QuantizeDynamic().quantizes_weights_only
    assert not QuantizeInt4().repairable
    lowering = {n for n, c in CHAINABLE.items() if c.lowers_precision}
    assert lowering == {
        "quantize_dynamic",
        "quantize_static",
        "quantize_nncf",
        "quantize_int4",
        "fp16",
    }
    assert {n for n, c in CHAINABLE.items() if c.prunes} == {"prune_structured", "prune_magnitude"}
