"""Shared fixtures: the small example models, built once per test session."""

import pytest

from optimize.examples import digits_data, tiny_transformer_module, train_digits_cnn


@pytest.fixture(autouse=True)
def expected_gains_apart(tmp_path_factory, monkeypatch):
    """Each test's runs keep the expected gains of chains in a folder of its own, not in
    the user's cache: the order chains are tried in never depends on other tests."""
    monkeypatch.setenv("OPTIMIZE_CACHE_DIR", str(tmp_path_factory.mktemp("expected_gains")))


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as float32 (N, 1, 8, 8) images with int64 labels."""
    return digits_data()


@pytest.fixture(scope="session")
def digits_cnn(digits):
    """The digits CNN, trained for a few seconds, in eval mode. Do not modify it."""
    return train_digits_cnn(digits)


@pytest.fixture(scope="session")
def tiny_transformer():
    """A small transformer encoder over (batch, 16, 64) float inputs, in eval mode."""
    return tiny_transformer_module()


@pytest.fixture(scope="session")
def digits_cnn_onnx(tmp_path_factory, digits_cnn):
    """The trained digits CNN as an ONNX file with a dynamic batch. Do not modify it."""
    import torch

    path = tmp_path_factory.mktemp("digits_onnx") / "cnn.onnx"
    torch.onnx.export(
        digits_cnn,
        (torch.zeros(2, 1, 8, 8),),
        str(path),
        input_names=["x"],
        dynamic_axes={"x": {0: "batch"}},
        dynamo=False,
    )
    return path


@pytest.fixture(scope="session")
def save_float_graph():
    """A function saving an opset-17 graph from float input `x` (batch, x_width) to float
    output `y` (batch, y_width), with its nodes and initializers given as numpy arrays."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def save(path, nodes, weights, x_width, y_width):
        graph = helper.make_graph(
            nodes,
            path.stem,
            [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", x_width])],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", y_width])],
            [numpy_helper.from_array(array, name) for name, array in weights.items()],
        )
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
        return path

    return save


@pytest.fixture(scope="session")
def deep_linear_onnx(tmp_path_factory, save_float_graph):
    """A linear MLP from 64 features to 8 through six MatMuls of width 512: a tenth of a
    millisecond a row, long enough that one session draws its speed like the next (a model
    of microseconds can draw 1.6× slower in one session than in another)."""
    import numpy as np
    from onnx import helper

    rng = np.random.default_rng(0)
    widths = [64] + [512] * 6 + [8]
    weights = {
        f"w{i}": (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        for i, (a, b) in enumerate(zip(widths, widths[1:], strict=False))
    }
    names = ["x", *(f"h{i}" for i in range(len(weights) - 1)), "y"]
    nodes = [
        helper.make_node("MatMul", [names[i], f"w{i}"], [names[i + 1]]) for i in range(len(weights))
    ]
    path = tmp_path_factory.mktemp("deep_linear") / "linear.onnx"
    return save_float_graph(path, nodes, weights, 64, 8)


@pytest.fixture(scope="session")
def digits_files(tmp_path_factory, digits, digits_cnn):
    """The digits CNN as TorchScript and as .pt2, with held-out evaluation data."""
    import numpy as np
    import torch

    folder = tmp_path_factory.mktemp("digits")
    torch.jit.save(torch.jit.script(digits_cnn), folder / "cnn.pt")
    program = torch.export.export(
        digits_cnn,
        (torch.from_numpy(digits.test_x[:2]),),
        dynamic_shapes=({0: torch.export.Dim("batch")},),
    )
    torch.export.save(program, folder / "cnn.pt2")
    np.savez(folder / "eval.npz", x=digits.test_x[:200], labels=digits.test_y[:200])
    return folder


@pytest.fixture(scope="session")
def tiny_lms(tmp_path_factory):
    """Tiny random-weight Llama, Qwen2 and GPT-2 folders and their exports, made on first use
    and shared by the generative runtime and export tests."""
    from llm_models import TinyLanguageModels

    return TinyLanguageModels(tmp_path_factory.mktemp("tiny_lms"))
