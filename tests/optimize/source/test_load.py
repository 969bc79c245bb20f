"""Loading model files of every form, detected by content, and the errors bad input gets."""

import hashlib
import subprocess
import sys
import textwrap

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from optimize.errors import UserError
from optimize.source.load import load_source
from passes.base import TensorSpec
from passes.torch_run import run_torch


class TwoInputNet(nn.Module):
    """Importable by the unpickler because it lives at module level."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + y


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)).eval()


def sha256(*paths) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def onnx_model(tmp_path, name="model.onnx", external=False):
    """A MatMul graph with a named batch dim, plus an int64 input with an unnamed dim."""
    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "w")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["y"]),
            helper.make_node("Identity", ["ids"], ["ids_out"]),
        ],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4]),
            helper.make_tensor_value_info("ids", TensorProto.INT64, [2, None]),
        ],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3]),
            helper.make_tensor_value_info("ids_out", TensorProto.INT64, [2, None]),
        ],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    path = tmp_path / name
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=external,
        location=f"{name}.data",
        size_threshold=0,
    )
    return path


# Each form, from a real saved file


def test_torchscript_loads_with_input_flags(tmp_path):
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(small_net()), str(path))

    source = load_source(path, ["x:batch,4"])

    assert source.form == "torchscript"
    assert source.model_kind == "torch"
    assert source.inputs == [TensorSpec("x", ("batch", 4), "float32")]
    assert source.source_id == sha256(path)
    x = np.ones((2, 4), np.float32)
    expected = small_net()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(run_torch(source.model, {"x": x}, source.inputs)[0], expected)


def test_torchscript_is_detected_by_content_not_extension(tmp_path):
    path = tmp_path / "model.onnx"
    torch.jit.save(torch.jit.script(small_net()), str(path))

    assert load_source(path, ["x:batch,4"]).form == "torchscript"


def test_pickled_module_loads_with_trust_and_orders_inputs_as_forward(tmp_path):
    path = tmp_path / "net.pt"
    torch.save(TwoInputNet(), path)

    source = load_source(path, ["y:batch,3", "x:batch,4"], trust_pickle=True)

    assert source.form == "pickled_module"
    assert isinstance(source.model, TwoInputNet)
    assert not source.model.training
    assert [s.name for s in source.inputs] == ["x", "y"]


MODEL_CODE = textwrap.dedent(
    """
    import sys

    import numpy as np
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return torch.tanh(self.fc(x))


    if __name__ == "__main__":
        torch.manual_seed(0)
        model = Net().eval()
        torch.save(model, sys.argv[1])
        x = torch.ones(2, 4)
        np.save(sys.argv[2], model(x).detach().numpy())
    """
)


@pytest.fixture(scope="module")
def main_pickle(tmp_path_factory):
    """A module pickled by a script run as __main__, so the pickle names `__main__.Net`."""
    folder = tmp_path_factory.mktemp("main_pickle")
    code = folder / "net_code.py"
    code.write_text(MODEL_CODE)
    model, expected = folder / "net.pt", folder / "expected.npy"
    subprocess.run([sys.executable, str(code), str(model), str(expected)], check=True)
    return code, model, np.load(expected)


def test_pickle_of_main_class_loads_with_model_code(main_pickle):
    code, path, expected = main_pickle

    source = load_source(path, ["x:batch,4"], trust_pickle=True, model_code=code)

    assert type(source.model).__name__ == "Net"
    outputs = run_torch(source.model, {"x": np.ones((2, 4), np.float32)}, source.inputs)
    np.testing.assert_allclose(outputs[0], expected, rtol=1e-6)


def test_pickle_of_main_class_without_model_code_says_to_pass_it(main_pickle):
    _, path, _ = main_pickle

    with pytest.raises(UserError, match="--model-code") as error:
        load_source(path, ["x:batch,4"], trust_pickle=True)
    assert "Net" in str(error.value)


def test_exported_program_gives_its_input_spec_and_samples(tmp_path):
    path = tmp_path / "net.pt2"
    example = torch.randn(2, 4)
    # Static shapes, torch.export's default: the loaded program still takes any batch.
    torch.export.save(torch.export.export(small_net(), (example,)), str(path))

    source = load_source(path)

    assert source.form == "exported_program"
    assert source.inputs == [TensorSpec("input", ("batch", 4), "float32")]
    np.testing.assert_array_equal(source.sample_inputs["input"], example.numpy())
    assert source.source_id == sha256(path)
    x = np.ones((5, 4), np.float32)
    expected = small_net()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(run_torch(source.model, {"input": x}, source.inputs)[0], expected)


class FlattenBySavedBatch(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Under static export x.shape[0] is the int 3, so the graph keeps that batch.
        return x.reshape(x.shape[0], -1) * 2


def test_exported_program_whose_graph_fixes_the_batch_keeps_it(tmp_path):
    path = tmp_path / "fixed.pt2"
    torch.export.save(torch.export.export(FlattenBySavedBatch(), (torch.randn(3, 4, 2),)), path)

    assert load_source(path).inputs == [TensorSpec("x", (3, 4, 2), "float32")]


def test_onnx_input_spec_comes_from_the_graph(tmp_path):
    path = onnx_model(tmp_path)

    source = load_source(path)

    assert source.form == "onnx"
    assert source.model_kind == "onnx"
    assert source.model is None
    assert source.inputs == [
        TensorSpec("x", ("n", 4), "float32"),
        TensorSpec("ids", (2, "dim1"), "int64"),
    ]
    assert source.source_id == sha256(path)


def test_onnx_input_flags_fill_dims_and_keep_the_model_dtype(tmp_path):
    source = load_source(onnx_model(tmp_path), ["ids:2,7"])

    assert source.inputs[1] == TensorSpec("ids", (2, 7), "int64")


def test_onnx_with_external_data_hashes_the_weights_too(tmp_path):
    path = onnx_model(tmp_path, external=True)
    data = tmp_path / "model.onnx.data"
    assert data.is_file()

    before = load_source(path)
    assert before.source_id == sha256(path, data)
    data.write_bytes(data.read_bytes()[::-1])
    assert load_source(path).source_id != before.source_id


# Bad input: each error names the problem and what to do


def test_onnx_whose_external_data_is_missing(tmp_path):
    path = onnx_model(tmp_path, external=True)
    (tmp_path / "model.onnx.data").unlink()
    with pytest.raises(UserError, match="model.onnx.data, which is missing"):
        load_source(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_source(tmp_path / "nope.pt")


def test_directory(tmp_path):
    with pytest.raises(UserError, match="is a directory"):
        load_source(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.onnx"
    path.touch()
    with pytest.raises(UserError, match="empty"):
        load_source(path)


def test_garbage_bytes_list_the_accepted_forms(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"this is not a model at all \x00\x01\x02" * 10)
    with pytest.raises(UserError) as error:
        load_source(path)
    message = str(error.value)
    assert "not a model file" in message
    for form in ("TorchScript", "torch.export.save", "ONNX"):
        assert form in message
    assert "\n" not in message


def test_pickled_module_without_trust_explains_the_risk(tmp_path):
    path = tmp_path / "net.pt"
    torch.save(TwoInputNet(), path)
    with pytest.raises(UserError) as error:
        load_source(path, ["x:batch,4", "y:batch,3"])
    message = str(error.value)
    assert "arbitrary code" in message
    assert "--trust-pickle" in message
    assert "torch.jit.save" in message


def test_state_dict_says_the_code_is_missing(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(small_net().state_dict(), path)
    with pytest.raises(UserError) as error:
        load_source(path, trust_pickle=True)
    message = str(error.value)
    assert "state_dict" in message
    assert "load_state_dict" in message
    assert "torch.jit.save(torch.jit.script(model)" in message


def test_input_flag_naming_no_onnx_input_lists_the_inputs(tmp_path):
    with pytest.raises(UserError) as error:
        load_source(onnx_model(tmp_path), ["image:1,4"])
    message = str(error.value)
    assert "image" in message
    assert "its inputs are: x, ids" in message


def test_input_flag_contradicting_a_fixed_onnx_dim(tmp_path):
    with pytest.raises(UserError, match="dim 1 is fixed at 4"):
        load_source(onnx_model(tmp_path), ["x:batch,5"])


def test_torchscript_without_input_flags_gives_an_example(tmp_path):
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(TwoInputNet()), str(path))
    with pytest.raises(UserError) as error:
        load_source(path)
    message = str(error.value)
    assert "does not record input shapes" in message
    assert "--input x:batch," in message
    assert "--input y:batch," in message


def test_wrong_number_of_inputs_for_forward(tmp_path):
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(TwoInputNet()), str(path))
    with pytest.raises(UserError, match=r"forward\(x, y\) takes 2 input\(s\), but 1"):
        load_source(path, ["x:batch,4"])
