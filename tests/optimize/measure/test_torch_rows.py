"""Which PyTorch rows are measured, and why the others are skipped."""

import dataclasses
from pathlib import Path

from figures import measured_variant

from hardware.runtimes.pytorch import unsupported_autocast
from hardware.targets import Target
from optimize.build.variant import Step
from optimize.measure import pick_profile
from optimize.measure.torch_rows import hopeless, int8_outside_limits, torch_rows
from optimize.source.load import Source


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
    int8 = rows["torch.compile (int8 PT2E)"]
    assert int8.status == "skipped" and "neither VNNI nor AMX" in int8.reason
    assert all(r.runtime == "torch" for r in rows.values())


def test_cpu_with_amx_runs_bf16_and_int8_and_gpu_runs_both_half_precisions():
    amx = torch_rows(_source("pickled_module"), Target("cpu"), ["amx_bf16", "amx_int8"], "r")
    assert all(r.status == "built" for r in amx)
    assert "torch.compile (int8 PT2E)" in {r.label for r in amx}
    gpu = {r.label for r in torch_rows(_source("pickled_module"), Target("gpu"), [], "r")}
    assert {"torch.compile (float16 autocast)", "torch.compile (bfloat16 autocast)"} <= gpu
    assert "torch.compile (int8 PT2E)" not in gpu
    assert unsupported_autocast("float16", Target("cpu"), ["avx512_fp16"]) is not None


def test_torchscript_is_not_compiled_and_onnx_has_no_rows():
    rows = {r.label: r for r in torch_rows(_source("torchscript"), Target("cpu"), [], "r")}
    assert rows["torch.compile"].status == "skipped"
    assert "TorchScript" in rows["torch.compile"].reason
    assert torch_rows(_source("onnx"), Target("cpu"), [], "r") == []


def _digits_measurer(tmp_path, digits, digits_cnn, threads=(1,)):
    """A measurer of the digits CNN saved as a .pt2 in `tmp_path`, with these threads."""
    import torch

    from hardware.profile import TimingBudget
    from hardware.session import SessionSettings
    from optimize.config.limits import Limits
    from optimize.data.eval_store import write_eval_store
    from optimize.measure.measurer import Measurer
    from optimize.measure.workload import Workload

    program = torch.export.export(
        digits_cnn,
        (torch.from_numpy(digits.test_x[:2]),),
        dynamic_shapes=({0: torch.export.Dim("batch")},),
    )
    torch.export.save(program, tmp_path / "cnn.pt2")
    feeds = {"x": digits.test_x[:32]}
    batches = [(feeds, digits.test_y[:32])]

    def reference(batch):
        with torch.no_grad():
            return [digits_cnn(torch.from_numpy(batch["x"])).numpy()]

    workload = Workload(
        Target("cpu"),
        write_eval_store(tmp_path / "eval", batches, 32, reference, False),
        feeds,
        1,
        32,
        64,
        TimingBudget(),
    )
    return Measurer(
        workload,
        workload,
        thread_options=tuple(SessionSettings(intra_op_threads=n) for n in threads),
        limits=Limits(),
        timeout_s=300,
        reuse=False,
        variants_dir=tmp_path,
        cache_dir=tmp_path / "cache",
        cache_key="",
        screen_key="",
    )


def test_a_torch_pick_is_profiled_by_pytorch(tmp_path, digits, digits_cnn):
    from figures import measured_variant

    from hardware.runtimes.base import RuntimeName
    from hardware.runtimes.pytorch import TorchSettings
    from optimize.measure.torch_rows import TorchRuns
    from optimize.measure.worker import MeasureJob
    from optimize.source.load import load_source

    measurer = _digits_measurer(tmp_path, digits, digits_cnn)
    workload = measurer.workload
    row = measured_variant("t", 1.0)
    settings = {"mode": "eager", "autocast": "float32", "threads": 1}
    row.measurements = dataclasses.replace(row.measurements, settings=settings)
    source = load_source(tmp_path / "cnn.pt2")
    settings = TorchSettings(threads=1)
    artifact = TorchRuns(source, measurer, Target("cpu"), [], "r").artifact(settings)
    measurer.jobs[row.id] = MeasureJob(RuntimeName.TORCH, artifact, (settings,), workload)
    profile = pick_profile.profile(measurer, row)
    ops = [r["op_type"] for r in profile]
    assert ops and all(op.startswith("aten::") for op in ops)
    # The two convolutions and two linear layers are the work; they must be among the top.
    assert any("conv" in op for op in ops) and any(op in ("aten::addmm", "aten::mm") for op in ops)
    assert abs(sum(r["share"] for r in profile) - 1.0) < 0.5
    assert all(r["calls_per_run"] > 0 for r in profile)


def test_pt2e_int8_keeps_the_digits_accuracy_under_torch_compile(digits, digits_cnn):
    import torch

    from hardware.runtimes.pt2e import quantize_for_inductor
    from hardware.runtimes.pytorch import TorchRuntime, TorchSettings, positional_feeds

    calibration = [[digits.train_x[i : i + 32]] for i in range(0, 256, 32)]
    quantized = quantize_for_inductor(digits_cnn, [digits.train_x[:2]], [True], calibration)
    assert any("quantize" in str(node.target) for node in quantized.graph.nodes)
    settings = TorchSettings("compile", int8=True, threads=1)
    opened = TorchRuntime().open(quantized, Target("cpu"), settings)
    int8 = opened.run(positional_feeds([digits.test_x]))[0]
    with torch.no_grad():
        fp32 = digits_cnn(torch.from_numpy(digits.test_x)).numpy()
    agreement = (int8.argmax(1) == fp32.argmax(1)).mean()
    assert (int8.argmax(1) == digits.test_y).mean() >= (
        fp32.argmax(1) == digits.test_y
    ).mean() - 0.01
    assert agreement >= 0.97


def test_pt2e_int8_is_not_compiled_when_every_static_int8_variant_is_outside_the_limits():
    row = next(
        r
        for r in torch_rows(_source("exported_program"), Target("cpu"), ["amx_int8"], "r")
        if r.runtime_settings["int8"]
    )

    def quantized(name, cosine, verdict=None):
        step = Step(name, name, {}, True, 1.0)
        return measured_variant(name, 1.0, cosine, verdict=verdict, steps=(step,))

    dynamic = quantized("quantize_dynamic", 1.0)
    static = quantized("quantize_static", 0.35, verdict="mean cosine 0.35 < 0.999")
    nncf = quantized("quantize_nncf", 0.9975, verdict="mean cosine 0.9975 < 0.999")
    reason = int8_outside_limits(row, [dynamic, static, nncf])
    assert reason.startswith("not compiled") and "mean cosine 0.35 < 0.999" in reason
    # One static int8 variant within the limits, or none measured yet: PT2E is worth a try.
    assert int8_outside_limits(row, [static, quantized("quantize_nncf", 0.9999)]) is None
    assert int8_outside_limits(row, [dynamic]) is None
    float_row = next(r for r in torch_rows(_source("exported_program"), Target("cpu"), [], "r"))
    assert int8_outside_limits(float_row, [static]) is None


def test_compiling_in_float32_is_skipped_sooner_than_in_a_lower_precision():
    rows = {
        r.label: r
        for r in torch_rows(_source("exported_program"), Target("cpu"), ["amx_bf16"], "r")
    }
    eager, fastest = measured_variant("eager", 2.5), measured_variant("onnx", 1.0)
    # Compiled in float32, PyTorch gains at most 1.7× over eager; in bfloat16, 2.4×.
    assert "in float32 gains well under 2×" in hopeless(rows["torch.compile"], eager, fastest)
    assert hopeless(rows["torch.compile (bfloat16 autocast)"], eager, fastest) is None
    assert hopeless(rows["torch.compile (int8 PT2E)"], eager, fastest) is None
    far_behind = measured_variant("eager", 3.5)
    assert hopeless(rows["torch.compile (bfloat16 autocast)"], far_behind, fastest)


def test_a_slow_compile_is_timed_in_full_at_the_thread_count_it_was_screened_at(
    tmp_path, digits, digits_cnn, monkeypatch
):
    from hardware.runtimes.pytorch import TorchRuntime
    from optimize.measure import torch_rows as rows_module
    from optimize.measure.torch_rows import TorchRuns
    from optimize.source.load import load_source

    # The digits CNN compiles in a second or two: as slow as a transformer, by the bar.
    monkeypatch.setattr(rows_module, "SWEPT_COMPILE_MS", 0.0)
    measurer = _digits_measurer(tmp_path, digits, digits_cnn, threads=(2, 1))
    runs = TorchRuns(load_source(tmp_path / "cnn.pt2"), measurer, Target("cpu"), [], "r")
    found = runs.measure(TorchRuntime(), [], lambda *args: None)
    eager, compiled = found[0], next(r for r in found if r.label == "torch.compile")
    assert eager.measured and compiled.measured
    assert [s.threads for s in measurer.jobs[eager.id].settings] == [2, 1]
    assert [s.threads for s in measurer.jobs[compiled.id].settings] == [2]
