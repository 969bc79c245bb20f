"""The output folder for a pick on another runtime: the file it ran and its settings, in a
folder named after the runtime, gone again when a later run picks something else."""

import json
import shutil

import numpy as np
from figures import measured_variant, results_of

from hardware.runtimes.registry import runtime
from hardware.targets import Target
from optimize.build.variant import RuntimeRow
from optimize.report.outputs import write_outputs


def test_an_openvino_pick_leaves_its_model_and_settings(digits_cnn_onnx, digits, tmp_path):
    model = tmp_path / "variants" / "v" / "model.onnx"
    model.parent.mkdir(parents=True)
    shutil.copy(digits_cnn_onnx, model)
    variant = measured_variant("v", 2.0, path=model)
    settings = {"threads": 1, "precision": "f32", "hint": "LATENCY", "streams": 1}
    row = RuntimeRow("row", "v", "openvino f32 on original", settings, runtime="openvino")
    row.record(measured_variant("fast", 1.0).measurements, variant.fidelity, None)

    write_outputs(results_of(tmp_path, [variant, row], row, variant))
    pick = json.loads((tmp_path / "openvino" / "openvino_pick.json").read_text())
    assert pick["runtime"] == "openvino" and pick["model"] == "model.onnx"
    assert pick["settings"]["precision"] == "f32" and "compile_model" in pick["how"]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["runtime_pick"] == "openvino/openvino_pick.json"
    assert "openvino/openvino_pick.json" in (tmp_path / "report.md").read_text()
    # The saved file, opened as the settings say, runs the model.
    openvino = runtime("openvino")
    opened = openvino.open(
        tmp_path / "openvino" / "model.onnx",
        Target("cpu"),
        openvino.settings(Target("cpu"), [], (1,))[0],
    )
    onnxruntime = runtime("onnxruntime")
    reference = onnxruntime.open(
        model, Target("cpu"), onnxruntime.settings(Target("cpu"), [], (1,))[0]
    )
    feeds = {"x": digits.test_x[:8]}
    np.testing.assert_allclose(opened.run(feeds)[0], reference.run(feeds)[0], atol=1e-4)

    write_outputs(results_of(tmp_path, [variant, row], variant, variant))
    assert not (tmp_path / "openvino" / "openvino_pick.json").exists()
    assert not (tmp_path / "openvino" / "model.onnx").exists()
    assert json.loads((tmp_path / "report.json").read_text())["runtime_pick"] is None
