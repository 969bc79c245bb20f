"""Figures for tests: short measuring settings, and variants with figures chosen to make
a point. Importable from any test (tests/ is on the path through its conftest)."""

# A recipe's [measure] for tests: a few short timed runs on ONNX Runtime alone. Figures
# this short rank nothing; the tests check what a run does, not how fast a model is.
QUICK_MEASURE = {
    "seconds": 0.02,
    "warmup_seconds": 0.0,
    "warmup_runs": 2,
    "min_runs": 5,
    "torch_runtimes": False,
    "onnx_runtimes": (),
}


def measured_variant(
    name,
    p50,
    cosine=1.0,
    *,
    spread=0.02,
    size=1.0,
    path=None,
    verdict=None,
    accuracy=None,
    steps=(),
):
    """A variant with known figures, as a measurement would leave it: for tests of the
    choice, the contest and the diagnosis on numbers chosen to make a point."""
    from hardware.profile import Measurements, Timing
    from optimize.build.variant import Status, Variant
    from optimize.records.fidelity import Fidelity

    timing = Timing(10, p50, p50, p50, p50, 0.0, p50, spread * p50)
    measurements = Measurements(
        latency=timing,
        throughput_batch=1,
        throughput_timing=timing,
        throughput_per_s=1000 / p50,
        startup_ms=1.0,
        size_mb=size,
        peak_memory_mb=1.0,
        session_memory_mb=1.0,
        providers=["CPUExecutionProvider"],
        settings={"intra_op_threads": 1},
    )
    fidelity = Fidelity(1, 0.0, 0.0, cosine, cosine, 0, accuracy=accuracy)
    variant = Variant(name, None, list(steps), path, Status.BUILT)
    variant.record(measurements, fidelity, verdict)
    return variant


def results_of(out_dir, variants, pick, pick_onnx, **extra):
    """The Results of a run over these candidates, as the report stage receives them."""
    from hardware.detect import describe_host
    from optimize.config.limits import Limits
    from optimize.report.results import Results

    return Results(
        source_path=out_dir / "net.pt2",
        source_form="exported program",
        source_id="0" * 64,
        inputs=[],
        target="cpu",
        variants=variants,
        pick=pick,
        pick_onnx=pick_onnx,
        pareto_front=[pick] if pick else [],
        tolerance=Limits(),
        eval_data={"description": "generated inputs"},
        environment=describe_host(include_gpus=False).to_dict(),
        out_dir=out_dir,
        **extra,
    )
