"""The registry names every pass once, and the facts the tool reads off a pass hold."""

import dataclasses
import pkgutil
from pathlib import Path

import passes
from passes.base import Pass
from passes.quantize_dynamic import QuantizeDynamic
from passes.quantize_int4 import QuantizeInt4
from passes.registry import CHAINABLE, PASSES, pass_class


def test_every_pass_module_is_registered_under_its_file_name():
    pass_modules = set()
    for info in pkgutil.iter_modules([str(Path(passes.__file__).parent)]):
        text = (Path(passes.__file__).parent / f"{info.name}.py").read_text()
        if "(Pass):" in text:
            pass_modules.add(info.name)
    names = {cls.name for cls in PASSES.values()}
    # export.py's pass is named "export"; the rest are named after their file.
    assert pass_modules - {"export"} <= names and "export" in names
    assert all(issubclass(cls, Pass) and dataclasses.is_dataclass(cls) for cls in PASSES.values())


def test_lead_in_passes_cannot_be_chained():
    assert set(PASSES) - set(CHAINABLE) == {"export", "preprocess"}
    assert pass_class("no_such_pass") is None


def test_the_fallback_can_steer_weight_quantizers_only():
    assert QuantizeDynamic().repairable and QuantizeDynamic().quantizes_weights_only
    assert not QuantizeInt4().repairable
    assert [n for n, c in CHAINABLE.items() if c.lowers_precision] == [
        "quantize_dynamic",
        "quantize_static",
        "quantize_int4",
        "fp16",
    ]
