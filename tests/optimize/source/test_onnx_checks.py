"""ONNX files ONNX Runtime cannot load are refused at the load stage, in one line that says
what is wrong and what to do, with the file untouched and nothing left in the output folder."""

import numpy as np
import onnx
import pytest
from cli_runs import assert_refused
from onnx import TensorProto, helper, numpy_helper


def _graph_model(nodes, opset=17, domains=(), weights=None):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(a, n) for n, a in (weights or {}).items()],
    )
    imports = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=imports)


def _custom_domain(folder):
    node = helper.make_node("MyOp", ["x"], ["y"], domain="com.acme")
    onnx.save(_graph_model([node], domains=["com.acme"]), folder / "model.onnx")
    return folder / "model.onnx"


def _dangling_input(folder):
    onnx.save(_graph_model([helper.make_node("Add", ["x", "ghost"], ["y"])]), folder / "model.onnx")
    return folder / "model.onnx"


def _old_opset(folder):
    model = _graph_model([helper.make_node("Relu", ["x"], ["y"])], opset=1)
    model.ir_version = 3
    onnx.save(model, folder / "model.onnx")
    return folder / "model.onnx"


def _newer_ir(folder):
    model = _graph_model([helper.make_node("Relu", ["x"], ["y"])])
    model.ir_version = onnx.IR_VERSION + 5
    onnx.save(model, folder / "model.onnx")
    return folder / "model.onnx"


def _data_outside(location):
    def save(folder):
        inner = folder / "model"
        inner.mkdir()
        weights = {"w": np.ones((4, 4), np.float32)}
        model = _graph_model([helper.make_node("MatMul", ["x", "w"], ["y"])], weights=weights)
        onnx.save(
            model,
            inner / "model.onnx",
            save_as_external_data=True,
            location="w.bin",
            size_threshold=0,
        )
        (inner / "w.bin").rename(folder / "w.bin")
        model = onnx.load(inner / "model.onnx", load_external_data=False)
        pointer = location(folder)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = pointer
        onnx.save(model, inner / "model.onnx")
        return inner / "model.onnx"

    return save


@pytest.mark.parametrize(
    "make, expected",
    [
        (_custom_domain, "uses operators ONNX Runtime has no kernels for (com.acme:MyOp)"),
        (_dangling_input, "is not a valid ONNX graph (Nodes in a graph must be topologically"),
        (_old_opset, "convert it with onnx.version_converter.convert_version(model, 17)"),
        (_newer_ir, f"newer than the installed onnx {onnx.__version__} reads"),
        (_data_outside(lambda folder: "../w.bin"), "keeps its data at '../w.bin', outside"),
        (
            _data_outside(lambda folder: str(folder / "w.bin")),
            "move the data file next to the model",
        ),
    ],
    ids=["custom-domain", "checker", "old-opset", "newer-ir", "data-above", "data-absolute"],
)
def test_onnx_files_the_runtime_cannot_load_are_refused_in_one_line(make, expected, tmp_path):
    model, out = make(tmp_path), tmp_path / "out"
    assert_refused(["run", str(model), "--out", str(out)], expected, [model], out, within_s=30)
