"""pick.json's record of a pick read from the Results: its precision comes from the passes
that made it, never from its label."""

from figures import measured_variant, results_of

from optimize.build.variant import Step
from optimize.report.served_pick import served_pick


def _step(name: str, label: str) -> Step:
    return Step(name, label, {}, True, 0.1)


def test_the_pick_s_float_precision_is_read_from_its_steps(tmp_path, digits_cnn_onnx):
    export = _step("export", "export")
    plain = measured_variant("p", 1.0, path=digits_cnn_onnx, steps=[export])
    # A step labelled in any way: what counts is the pass that made it.
    halved = measured_variant(
        "h", 1.0, path=digits_cnn_onnx, steps=[export, _step("fp16", "half (f16)")]
    )
    for pick, expected in ((plain, "fp32"), (halved, "fp16")):
        record = served_pick(results_of(tmp_path, [pick], pick, pick), "best.onnx")
        assert record.float_precision == expected
