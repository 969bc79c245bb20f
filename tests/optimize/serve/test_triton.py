"""The pick as a Triton model repository and a KServe manifest: each config.pbtxt parses with
Triton's own protobuf and names the backend, tensors and settings the pick ran with; the
served file is the pick's; a later run with another pick leaves nothing stale."""

import dataclasses
import json
import shutil

import numpy as np
import torch
import yaml
from figures import measured_variant, results_of
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as triton

from hardware.runtimes.registry import runtime
from hardware.targets import Target
from optimize.build.variant import RuntimeRow
from optimize.report.outputs import write_outputs
from optimize.serve.pick_json import ServedPick
from optimize.serve.triton import served_model, write_triton_repository


def _config(out, name="net"):
    text = (out / "serving" / "triton" / name / "config.pbtxt").read_text()
    return text_format.Parse(text, triton.ModelConfig()), text


def _variant_on(model_file, tmp_path):
    model = tmp_path / "variants" / "v" / "model.onnx"
    model.parent.mkdir(parents=True)
    shutil.copy(model_file, model)
    return measured_variant("v", 2.0, path=model)


def _row(runtime_name, label, settings, variant):
    row = RuntimeRow("row", "v", label, settings, runtime=runtime_name)
    row.record(measured_variant("fast", 1.0).measurements, variant.fidelity, None)
    return row


def test_an_onnx_runtime_pick_is_served_by_the_onnxruntime_backend(digits_cnn_onnx, tmp_path):
    variant = _variant_on(digits_cnn_onnx, tmp_path)
    write_outputs(results_of(tmp_path, [variant], variant, variant))
    config, _ = _config(tmp_path)
    assert config.name == "net" and config.backend == "onnxruntime"
    # The first dim is dynamic everywhere, so Triton batches along it up to what was measured.
    assert config.max_batch_size == 1 and config.HasField("dynamic_batching")
    (tensor,) = config.input
    assert tensor.name == "x" and list(tensor.dims) == [1, 8, 8]
    assert triton.DataType.Name(tensor.data_type) == "TYPE_FP32"
    assert [list(o.dims) for o in config.output] == [[10]]
    assert config.instance_group[0].kind == triton.ModelInstanceGroup.KIND_CPU
    assert config.parameters["intra_op_thread_count"].string_value == "1"
    served = tmp_path / "serving" / "triton" / "net" / "1" / "model.onnx"
    assert served.read_bytes() == (tmp_path / "best.onnx").read_bytes()

    manifest = yaml.safe_load((tmp_path / "serving" / "kserve.yaml").read_text())
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert manifest["kind"] == "InferenceService" and manifest["metadata"]["name"] == "net"
    model = manifest["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "triton"} and model["protocolVersion"] == "v2"
    assert model["runtime"] == "kserve-tritonserver"
    assert model["resources"]["requests"]["cpu"] == "1"
    assert model["resources"]["requests"]["memory"].endswith("Mi")
    listed = json.loads((tmp_path / "manifest.json").read_text())
    assert "serving/triton/net/config.pbtxt" in json.dumps(listed)


def test_an_openvino_pick_is_served_as_ir_with_its_hints(digits_cnn_onnx, digits, tmp_path):
    variant = _variant_on(digits_cnn_onnx, tmp_path)
    settings = {"threads": 2, "precision": "bf16", "hint": "LATENCY", "streams": 1}
    row = _row("openvino", "openvino bf16 on original", settings, variant)
    write_outputs(results_of(tmp_path, [variant, row], row, variant))
    config, _ = _config(tmp_path)
    assert config.backend == "openvino"
    parameters = {k: v.string_value for k, v in config.parameters.items()}
    assert parameters == {
        "INFERENCE_NUM_THREADS": "2",
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": "1",
        "HINT_BF16": "YES",
    }
    version = tmp_path / "serving" / "triton" / "net" / "1"
    assert sorted(p.name for p in version.iterdir()) == ["model.bin", "model.xml"]
    cpu, openvino = Target("cpu"), runtime("openvino")
    opened = openvino.open(version / "model.xml", cpu, openvino.settings(cpu, [], (1,))[0])
    reference = runtime("onnxruntime").open(
        variant.path, cpu, runtime("onnxruntime").settings(cpu, [], (1,))[0]
    )
    feeds = {"x": digits.test_x[:8]}
    np.testing.assert_allclose(opened.run(feeds)[0], reference.run(feeds)[0], atol=1e-4)

    # A later run that picks ONNX Runtime leaves no IR behind.
    write_outputs(results_of(tmp_path, [variant, row], variant, variant))
    assert sorted(p.name for p in version.iterdir()) == ["model.onnx"]
    assert _config(tmp_path)[0].backend == "onnxruntime"
    write_outputs(results_of(tmp_path, [variant], None, None))
    assert not (tmp_path / "serving" / "triton" / "net").exists()
    assert not (tmp_path / "serving" / "kserve.yaml").exists()


def test_a_pytorch_pick_is_served_as_torchscript_or_as_the_best_onnx(
    digits_cnn, digits_cnn_onnx, tmp_path
):
    variant = _variant_on(digits_cnn_onnx, tmp_path)
    eager = {"mode": "eager", "autocast": "float32", "threads": 1}
    row = _row("torch", "torch eager", eager, variant)
    scripted = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(digits_cnn), scripted)
    results = results_of(tmp_path, [variant, row], row, variant)
    results.source_path, results.source_form = scripted, "torchscript"
    write_outputs(results)
    config, _ = _config(tmp_path)
    assert config.backend == "pytorch"
    assert config.parameters["INTRA_OP_THREAD_COUNT"].string_value == "1"
    assert (tmp_path / "serving/triton/net/1/model.pt").read_bytes() == scripted.read_bytes()

    compiled = {"mode": "compile", "autocast": "bfloat16", "threads": 1}
    results.pick = _row("torch", "torch.compile (bfloat16 autocast)", compiled, variant)
    write_outputs(results)
    config, text = _config(tmp_path)
    assert config.backend == "onnxruntime"
    assert text.startswith("# The pick, torch.compile (bfloat16 autocast), runs in Python")
    assert not (tmp_path / "serving/triton/net/1/model.pt").exists()


def _onnx_pick(model, folder, **changes):
    """pick.json's record of `model` picked as best.onnx on ONNX Runtime, with `changes`."""
    shutil.copy(model, folder / "best.onnx")
    pick = ServedPick(
        out_dir=folder,
        runtime="onnxruntime",
        artifact="best.onnx",
        label="export",
        settings={"intra_op_threads": 1},
        providers=["CPUExecutionProvider"],
        inputs=[{"name": "x", "dtype": "float32", "dims": ["batch", 1, 8, 8]}],
        outputs=[{"name": "y", "dtype": "float32", "dims": ["batch", 10]}],
        figures={"throughput_batch": 1, "session_memory_mb": 1.0, "cores": 1},
        target="cpu",
        source=str(folder / "net.pt2"),
        source_form="exported_program",
        source_task=None,
        best_onnx="best.onnx",
        best_onnx_label="export",
    )
    return dataclasses.replace(pick, **changes)


def test_a_gpu_pick_under_tensorrt_is_served_on_its_device_in_its_precision(
    digits_cnn_onnx, tmp_path
):
    pick = _onnx_pick(
        digits_cnn_onnx,
        tmp_path,
        label="export → fp16",
        float_precision="fp16",
        settings={"intra_op_threads": 0, "graph_level": "basic"},
        providers=["TensorrtExecutionProvider", "CUDAExecutionProvider"],
        outputs=[{"name": "y", "dtype": "float16", "dims": ["batch", 10]}],
        figures={"throughput_batch": 32, "session_memory_mb": 100.0, "cores": 2},
        target="gpu:1",
    )
    write_triton_repository(pick, served_model(pick))
    config, _ = _config(tmp_path)
    (group,) = config.instance_group
    assert group.kind == triton.ModelInstanceGroup.KIND_GPU and list(group.gpus) == [1]
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP16"
    assert config.optimization.graph.level == -1
    assert triton.DataType.Name(config.output[0].data_type) == "TYPE_FP16"


def test_every_output_type_a_graph_may_have_is_declared(digits_cnn_onnx, tmp_path):
    outputs = [
        {"name": name, "dtype": dtype, "dims": ["batch", 2]}
        for name, dtype in (("ids", "uint64"), ("words", "object"), ("counts", "int16"))
    ]
    pick = _onnx_pick(digits_cnn_onnx, tmp_path, outputs=outputs)
    write_triton_repository(pick, served_model(pick))
    config, _ = _config(tmp_path)
    kinds = [triton.DataType.Name(o.data_type) for o in config.output]
    assert kinds == ["TYPE_UINT64", "TYPE_STRING", "TYPE_INT16"]
    # An output fixed in its first dim: no batching along it, in the config as in the sweep.
    fixed = dataclasses.replace(pick, outputs=[{"name": "y", "dtype": "float32", "dims": [1, 10]}])
    assert not fixed.batches_on_first_dim
    write_triton_repository(fixed, served_model(fixed))
    config, _ = _config(tmp_path)
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
