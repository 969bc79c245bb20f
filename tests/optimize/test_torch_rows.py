"""Which PyTorch rows are measured, and why the others are skipped."""

from pathlib import Path

from hardware.targets import Target
from hardware.torch_runtime import unsupported_autocast
from optimize.load import Source
from optimize.torch_rows import torch_rows


def _source(form):
    return Source(Path("m.pt"), form, [], object(), {}, "abc")


def test_cpu_without_bf16_units_skips_bf16_with_the_reason():
    rows = {
        r.label: r for r in torch_rows(_source("exported_program"), Target("cpu"), ["avx2"], "r")
    }
    assert rows["torch eager"].status == "built"
    assert rows["torch.compile"].status == "built"
    bf16 = rows["torch.compile (bfloat16 autocast)"]
    assert bf16.status == "skipped" and "AMX" in bf16.reason
    assert all(r.runtime == "torch" for r in rows.values())


def test_cpu_with_amx_runs_bf16_and_gpu_runs_both_half_precisions():
    amx = torch_rows(_source("pickled_module"), Target("cpu"), ["amx_bf16"], "r")
    assert all(r.status == "built" for r in amx)
    gpu = {r.label for r in torch_rows(_source("pickled_module"), Target("gpu"), [], "r")}
    assert {"torch.compile (float16 autocast)", "torch.compile (bfloat16 autocast)"} <= gpu
    assert unsupported_autocast("float16", Target("cpu"), ["avx512_fp16"]) is not None


def test_torchscript_is_not_compiled_and_onnx_has_no_rows():
    rows = {r.label: r for r in torch_rows(_source("torchscript"), Target("cpu"), [], "r")}
    assert rows["torch.compile"].status == "skipped"
    assert "TorchScript" in rows["torch.compile"].reason
    assert torch_rows(_source("onnx"), Target("cpu"), [], "r") == []
