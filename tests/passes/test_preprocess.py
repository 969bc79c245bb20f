"""Preprocessing compiled into ONNX: the merged graph against the NumPy reference, and served models."""

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from onnx import TensorProto, helper

from hardware.targets import parse_target
from passes.base import PassContext, PassError, TensorSpec
from passes.preprocess import Preprocess
from passes.preprocess_spec import (
    apply_numpy,
    fit,
    parse_preprocessing,
    raw_input_specs,
    read_fit_data,
)

CPU = PassContext(parse_target("cpu"), [])
PROPERTY = settings(max_examples=100, deadline=None)


def _identity_model(path: Path, inputs: dict[str, list]) -> Path:
    """A float32 model that returns each input unchanged, to read the preprocessing back."""
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in inputs.items()]
    outs = [
        helper.make_tensor_value_info(f"{n}_out", TensorProto.FLOAT, d) for n, d in inputs.items()
    ]
    nodes = [helper.make_node("Identity", [n], [f"{n}_out"]) for n in inputs]
    graph = helper.make_graph(nodes, "identity", ins, outs)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _run(path: Path, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def _assert_graph_matches_reference(table, model_dims, fit_data, feeds):
    """Fit `table` on `fit_data`, merge it before an identity model and compare with NumPy."""
    # Float32 extremes overflow to inf, in NumPy and ONNX alike.
    with np.errstate(over="ignore", invalid="ignore"):
        spec = fit(parse_preprocessing(table), fit_data)
        want = apply_numpy(spec, feeds)
    with tempfile.TemporaryDirectory() as tmp:
        model = _identity_model(Path(tmp) / "identity.onnx", model_dims)
        outcome = Preprocess.from_spec(spec).apply(model, Path(tmp), CPU)
        got = _run(outcome.path, feeds)
    for name, value in zip(model_dims, got, strict=True):
        assert value.dtype == np.float32
        np.testing.assert_allclose(value, want[name], rtol=1e-5, atol=1e-5)


# Finite values, the invalid ones, and the float32 extremes.
FLOATS = st.one_of(
    st.floats(-100, 100, width=32),
    st.sampled_from([np.nan, np.inf, -np.inf, 0.0]),
    st.floats(width=32),
)
TABLE_STEPS = st.one_of(
    st.builds(
        lambda how, low, high: (
            {"step": "replace_invalid", "with": how}
            | ({"value": 7.5} if how == "constant" else {})
            | ({"low": low} if low is not None else {})
            | ({"high": high} if high is not None else {})
        ),
        st.sampled_from(["mean", "median", "constant"]),
        st.none() | st.floats(-50, 0),
        st.none() | st.floats(0, 50),
    ),
    st.builds(
        lambda low, high: {"step": "clip", "low": low, "high": high},
        st.floats(-50, 0),
        st.floats(0, 50),
    ),
    st.just({"step": "standardize"}),
    st.just({"step": "min_max"}),
)


@PROPERTY
@given(
    steps=st.lists(TABLE_STEPS, min_size=1, max_size=4),
    columns=st.integers(1, 4),
    data=st.data(),
)
def test_tabular_steps_match_reference_on_invalid_values(steps, columns, data):
    fit_x = data.draw(arrays(np.float32, (8, columns), elements=FLOATS))
    x = data.draw(arrays(np.float32, (data.draw(st.integers(1, 6)), columns), elements=FLOATS))
    _assert_graph_matches_reference({"x": steps}, {"x": ["batch", columns]}, {"x": fit_x}, {"x": x})


@PROPERTY
@given(
    columns=st.integers(1, 3),
    unknown=st.sampled_from(["zeros", "extra"]),
    data=st.data(),
)
def test_one_hot_matches_reference_on_unseen_categories(columns, unknown, data):
    # Fitted on codes 0..4; fed codes from -3 to 9, so unseen ones appear.
    fit_codes = data.draw(arrays(np.int64, (10, columns), elements=st.integers(0, 4)))
    codes = data.draw(
        arrays(np.int64, (data.draw(st.integers(1, 8)), columns), elements=st.integers(-3, 9))
    )
    width = sum(len(np.unique(c)) + (unknown == "extra") for c in fit_codes.T)
    table = {"cat": [{"step": "one_hot", "unknown": unknown}]}
    _assert_graph_matches_reference(
        table, {"cat": ["batch", width]}, {"cat": fit_codes}, {"cat": codes}
    )


@PROPERTY
@given(
    normalize_first=st.booleans(),
    mean=st.lists(st.floats(0, 1), min_size=3, max_size=3),
    std=st.lists(st.floats(0.1, 2), min_size=3, max_size=3),
    data=st.data(),
)
def test_image_steps_match_reference(normalize_first, mean, std, data):
    pixels = data.draw(arrays(np.uint8, (data.draw(st.integers(1, 3)), 5, 4, 3)))
    normalize = {
        "step": "normalize",
        "mean": mean,
        "std": std,
        "axis": -1 if normalize_first else 1,
    }
    layout = {"step": "layout", "order": "nhwc_to_nchw"}
    steps = [{"step": "to_float"}] + (
        [normalize, layout] if normalize_first else [layout, normalize]
    )
    _assert_graph_matches_reference(
        {"img": steps}, {"img": ["batch", 3, 5, 4]}, {}, {"img": pixels}
    )


@pytest.mark.parametrize(
    "table, message",
    [
        (
            {"x": [{"step": "scale"}]},
            "preprocess 'x': unknown step 'scale'; use one of replace_invalid, clip",
        ),
        (
            {"x": [{"step": "clip", "lo": 0}]},
            "step 'clip': unknown option 'lo'; valid options: low, high",
        ),
        (
            {"x": [{"step": "replace_invalid", "with": "mode"}]},
            "'with' is 'mode'; use one of mean, median",
        ),
        (
            {"x": [{"step": "replace_invalid", "with": "constant"}]},
            "give a 'value' with 'with = constant'",
        ),
        ({"x": [{"step": "standardize", "mean": "zero"}]}, "'mean' must be a number or a list"),
        ({"x": [{"step": "replace_invalid", "with": "mean", "value": 0}]}, "and only then"),
        ({"x": [{"step": "min_max", "axis": "columns"}]}, "'axis' must be an integer"),
        ({"x": [{"step": "clip"}]}, "give 'low', 'high' or both"),
        ({"x": []}, "preprocess 'x': give a non-empty list of steps"),
        (
            {"c": [{"step": "clip", "low": 0}, {"step": "one_hot"}]},
            "'one_hot': must be the first step",
        ),
        (
            {"c": [{"step": "one_hot", "categories": [1, 2]}]},
            "one list of distinct integers per column",
        ),
        (
            {"c": [{"step": "one_hot", "unknown": "error"}]},
            "'unknown' is 'error'; use one of zeros, extra",
        ),
        ({"i": [{"step": "layout", "order": "chw"}]}, "use one of nhwc_to_nchw, nchw_to_nhwc"),
    ],
)
def test_bad_spec_is_refused_with_a_clear_message(table, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_preprocessing(table)


def test_fit_ignores_invalid_values_and_round_trips_through_json(tmp_path):
    x = np.array([[1.0, np.nan], [np.inf, 4.0], [3.0, -np.inf], [100.0, 8.0]], np.float32)
    np.savez(tmp_path / "fit.npz", x=x)
    table = {
        "x": [{"step": "replace_invalid", "with": "median", "high": 50}, {"step": "standardize"}]
    }
    spec = fit(parse_preprocessing(table), read_fit_data(tmp_path / "fit.npz"))
    replace, standardize = spec.steps()["x"]
    assert replace.fill == (2.0, 6.0)  # 100 is out of range, NaN and inf are invalid
    cleaned = np.array([[1, 6], [2, 4], [3, 6], [2, 8]], np.float32)
    np.testing.assert_allclose(standardize.mean, cleaned.mean(axis=0))
    np.testing.assert_allclose(standardize.std, cleaned.std(axis=0), rtol=1e-6)
    assert parse_preprocessing(json.loads(spec.to_json())) == spec
    assert json.loads(json.dumps(Preprocess.from_spec(spec).params()))["spec"] == spec.to_json()
    assert spec.unfitted() == [] and parse_preprocessing(table).unfitted() == [
        "x: replace_invalid",
        "x: standardize",
    ]


def test_raw_inputs_are_what_the_first_step_reads():
    spec = parse_preprocessing(
        {
            "img": [{"step": "to_float"}, {"step": "layout"}],
            "cat": [{"step": "one_hot", "categories": [[0, 1], [5, 6, 7]]}],
        }
    )
    model = [
        TensorSpec("img", ("batch", 3, 32, 24)),
        TensorSpec("cat", ("batch", 5)),
        TensorSpec("other", ("batch", 2), "int64"),
    ]
    assert raw_input_specs(spec, model) == [
        TensorSpec("img", ("batch", 32, 24, 3), "uint8"),
        TensorSpec("cat", ("batch", 2), "int64"),
        TensorSpec("other", ("batch", 2), "int64"),
    ]


@pytest.mark.parametrize(
    "table, message",
    [
        ({"x": [{"step": "standardize"}]}, r"not fitted \(x: standardize\)"),
        ({"y": [{"step": "clip", "low": 0}]}, "names input 'y'; the model's inputs are x, n"),
        (
            {"n": [{"step": "clip", "low": 0}]},
            "input 'n' is int64, but preprocessing produces float32",
        ),
        (
            {"x": [{"step": "one_hot", "categories": [[1, 2]]}]},
            "input 'x' has 3 columns, one_hot makes 2",
        ),
    ],
)
def test_pass_refuses_a_spec_that_does_not_fit_the_model(table, message, tmp_path):
    ins = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3]),
        helper.make_tensor_value_info("n", TensorProto.INT64, ["batch", 3]),
    ]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", ins, outs)
    onnx.save(helper.make_model(graph), str(tmp_path / "m.onnx"))
    with pytest.raises(PassError, match=message):
        Preprocess(json.dumps(table)).apply(tmp_path / "m.onnx", tmp_path, CPU)


def _breast_cancer_with_categories():
    """breast_cancer with 3% of features corrupted to NaN/±inf, plus two integer columns
    that carry part of the label, with codes in the test split never seen in training."""
    from sklearn.datasets import load_breast_cancer

    rng = np.random.default_rng(0)
    x, y = load_breast_cancer(return_X_y=True)
    x = x.astype(np.float32)
    corrupt = rng.random(x.shape) < 0.03
    x[corrupt] = rng.choice([np.nan, np.inf, -np.inf], size=corrupt.sum())
    cat = np.stack([y * 2 + rng.integers(0, 2, len(y)), rng.integers(10, 14, len(y))], axis=1)
    train = rng.random(len(y)) < 0.7
    cat[~train & (rng.random(len(y)) < 0.1), 1] = 99
    return {"x": x, "cat": cat.astype(np.int64)}, y, train


def test_tabular_model_serves_raw_features_with_the_trained_accuracy(tmp_path):
    import torch

    raw, y, train = _breast_cancer_with_categories()
    table = {
        "x": [{"step": "replace_invalid", "with": "median"}, {"step": "standardize"}],
        "cat": [{"step": "one_hot", "unknown": "extra"}],
    }
    spec = fit(parse_preprocessing(table), {k: v[train] for k, v in raw.items()})
    ready = {k: torch.from_numpy(v) for k, v in apply_numpy(spec, raw).items()}
    width = ready["x"].shape[1] + ready["cat"].shape[1]

    class TwoInputMLP(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(width, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2)
            )

        def forward(self, x, cat):
            return self.net(torch.cat([x, cat], dim=1))

    torch.manual_seed(0)
    model = TwoInputMLP()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    labels = torch.from_numpy(y[train])
    for _ in range(150):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(
            model(ready["x"][train], ready["cat"][train]), labels
        )
        loss.backward()
        optimizer.step()
    model.eval()
    test = ~train
    with torch.no_grad():
        torch_logits = model(ready["x"][test], ready["cat"][test]).numpy()
    torch.onnx.export(
        model,
        (ready["x"][:2], ready["cat"][:2]),
        str(tmp_path / "mlp.onnx"),
        input_names=["x", "cat"],
        dynamic_axes={"x": {0: "batch"}, "cat": {0: "batch"}},
        dynamo=False,
    )
    before = (tmp_path / "mlp.onnx").read_bytes()
    outcome = Preprocess.from_spec(spec).apply(tmp_path / "mlp.onnx", tmp_path, CPU)
    assert (tmp_path / "mlp.onnx").read_bytes() == before, "the input model must not change"
    assert [i.name for i in onnx.load(str(outcome.path)).graph.input] == ["x", "cat"]

    served = _run(outcome.path, {k: v[test] for k, v in raw.items()})[0]
    np.testing.assert_allclose(served, torch_logits, atol=1e-4)
    torch_accuracy = (torch_logits.argmax(1) == y[test]).mean()
    assert (served.argmax(1) == y[test]).mean() == torch_accuracy > 0.9


def test_image_model_takes_uint8_nhwc(tmp_path):
    import torch

    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten()).eval()
    torch.onnx.export(
        conv,
        (torch.zeros(1, 3, 8, 8),),
        str(tmp_path / "conv.onnx"),
        input_names=["image"],
        dynamic_axes={"image": {0: "batch"}},
        dynamo=False,
    )
    table = {
        "image": [
            {"step": "to_float"},
            {"step": "normalize", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
            {"step": "layout", "order": "nhwc_to_nchw"},
        ]
    }
    spec = parse_preprocessing(table)
    preprocess = Preprocess.from_spec(spec)
    assert preprocess.label() == "preprocess(image: to_float, standardize, layout)"
    outcome = preprocess.apply(tmp_path / "conv.onnx", tmp_path, CPU)
    (raw,) = raw_input_specs(spec, [TensorSpec("image", ("batch", 3, 8, 8))])
    pixels = np.random.default_rng(0).integers(0, 256, raw.concrete_shape(5), dtype=np.uint8)
    with torch.no_grad():
        want = conv(torch.from_numpy(apply_numpy(spec, {"image": pixels})["image"])).numpy()
    np.testing.assert_allclose(_run(outcome.path, {"image": pixels})[0], want, atol=1e-5)
