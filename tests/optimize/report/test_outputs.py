"""The output folder for a pick on another runtime: the model it ran, as that runtime reads
it, and its settings in a folder named after the runtime, gone again when a later run
picks something else; pick.json for whichever runtime won."""

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
    folder = tmp_path / "openvino"
    pick = json.loads((folder / "openvino_pick.json").read_text())
    assert pick["runtime"] == "openvino" and pick["model"] == "model.xml"
    assert pick["settings"]["precision"] == "f32" and "compile_model" in pick["how"]
    assert (folder / "model.bin").stat().st_size > 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["runtime_pick"] == "openvino/openvino_pick.json"
    assert "openvino/openvino_pick.json" in (tmp_path / "report.md").read_text()
    served = json.loads((tmp_path / "pick.json").read_text())
    assert served["runtime"] == "openvino" and served["artifact"] == "openvino/model.xml"
    assert served["inputs"] == [{"name": "x", "dtype": "float32", "dims": ["batch", 1, 8, 8]}]
    assert [o["dtype"] for o in served["outputs"]] == ["float32"]
    assert served["settings"]["precision"] == "f32" and served["figures"]["p50_ms"] == 1.0
    # The saved IR, opened as the settings say, runs the model the pick ran.
    cpu = Target("cpu")
    openvino, onnxruntime = runtime("openvino"), runtime("onnxruntime")
    opened = openvino.open(folder / "model.xml", cpu, openvino.settings(cpu, [], (1,))[0])
    reference = onnxruntime.open(model, cpu, onnxruntime.settings(cpu, [], (1,))[0])
    feeds = {"x": digits.test_x[:8]}
    np.testing.assert_allclose(opened.run(feeds)[0], reference.run(feeds)[0], atol=1e-4)

    write_outputs(results_of(tmp_path, [variant, row], variant, variant))
    assert not (folder / "openvino_pick.json").exists() and not (folder / "model.xml").exists()
    assert json.loads((tmp_path / "report.json").read_text())["runtime_pick"] is None
    served = json.loads((tmp_path / "pick.json").read_text())
    assert served["runtime"] == "onnxruntime" and served["artifact"] == "best.onnx"
    assert served["settings"] == {"intra_op_threads": 1}

    write_outputs(results_of(tmp_path, [variant], None, None))
    assert not (tmp_path / "pick.json").exists()
