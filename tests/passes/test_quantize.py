"""Static and dynamic int8, int4 weight-only and fp16 on real exported models: validity,
agreement with fp32, size on disk, and the cases each pass skips or refuses."""

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from hardware.targets import Target
from optimize.examples import top1_accuracy
from passes.base import PassContext, PassError, PassSkipped, TensorSpec
from passes.fp16 import Float16
from passes.onnx_files import external_data_files, op_histogram
from passes.quantize_dynamic import QuantizeDynamic
from passes.quantize_int4 import QuantizeInt4
from passes.quantize_static import QuantizeStatic

CNN_INPUTS = [TensorSpec("x", ("batch", 1, 8, 8))]
TRANSFORMER_INPUTS = [TensorSpec("x", ("batch", 16, 64))]


def _export(model: torch.nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Dynamo export with a dynamic batch and the weights inside the file. The exporter's
    per-node source traces (about 140 KB on the transformer) are dropped, so that file
    sizes compare the weights, as they would on a model of realistic size."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=["x"],
            dynamo=True,
            external_data=False,
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            verbose=False,
        )
    proto = onnx.load(str(path))
    for node in proto.graph.node:
        del node.metadata_props[:]
    onnx.save(proto, str(path))
    return path


@pytest.fixture(scope="module")
def cnn_onnx(tmp_path_factory, digits, digits_cnn):
    path = tmp_path_factory.mktemp("cnn") / "cnn.onnx"
    return _export(digits_cnn, torch.from_numpy(digits.train_x[:2]), path)


@pytest.fixture(scope="module")
def transformer_onnx(tmp_path_factory, tiny_transformer):
    path = tmp_path_factory.mktemp("transformer") / "transformer.onnx"
    return _export(tiny_transformer, torch.randn(2, 16, 64), path)


@pytest.fixture(scope="module")
def transformer_x():
    return np.random.default_rng(0).standard_normal((32, 16, 64)).astype(np.float32)


@pytest.fixture(scope="module")
def transformer_fp32(transformer_onnx, transformer_x):
    """The fp32 model's outputs on `transformer_x`: the reference every variant is held to."""
    return _run(transformer_onnx, transformer_x)


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(
        np.mean(np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)))
    )


def _size_ratio(before: Path, after: Path) -> float:
    return before.stat().st_size / after.stat().st_size


@pytest.mark.parametrize("calibration", ["minmax", "entropy", "percentile"])
def test_static_int8_keeps_digits_accuracy(calibration, cnn_onnx, digits, tmp_path):
    before = cnn_onnx.read_bytes()
    ctx = PassContext(Target("cpu"), CNN_INPUTS, {"x": digits.train_x[:256]})
    outcome = QuantizeStatic(calibration).apply(cnn_onnx, tmp_path, ctx)
    assert cnn_onnx.read_bytes() == before, "the input model must not change"
    onnx.checker.check_model(str(outcome.path), full_check=True)
    assert _size_ratio(cnn_onnx, outcome.path) > 2.5
    fp32 = top1_accuracy(_run(cnn_onnx, digits.test_x), digits.test_y)
    int8 = top1_accuracy(_run(outcome.path, digits.test_x), digits.test_y)
    assert int8 >= fp32 - 0.01, f"int8 {int8:.4f} vs fp32 {fp32:.4f}"
    assert f"calibrated on 128 samples ({calibration})" in outcome.note


def test_static_int8_without_sample_inputs_is_refused(cnn_onnx, tmp_path):
    with pytest.raises(PassError, match="needs sample inputs for calibration"):
        QuantizeStatic().apply(cnn_onnx, tmp_path, PassContext(Target("cpu"), CNN_INPUTS))


@pytest.mark.parametrize("calibration", ["entropy", "percentile"])
def test_static_int8_calibrates_on_whole_batches(calibration, cnn_onnx, digits, tmp_path):
    # Histogram calibrators stack all batches, so 100 rows in batches of 16 use 96.
    ctx = PassContext(Target("cpu"), CNN_INPUTS, {"x": digits.train_x[:100]})
    outcome = QuantizeStatic(calibration).apply(cnn_onnx, tmp_path, ctx)
    assert "calibrated on 96 samples" in outcome.note


@pytest.mark.parametrize(
    "pass_, integer_op",
    [
        pytest.param(QuantizeDynamic(), "MatMulInteger", id="dynamic"),
        pytest.param(QuantizeInt4(), "com.microsoft.MatMulNBits", id="int4"),
    ],
)
def test_weight_quantizers_take_linear_layers_exported_as_gemm(
    pass_, integer_op, cnn_onnx, digits, tmp_path
):
    """The dynamo exporter writes the CNN's two Linear layers (on 2-D inputs) as Gemm; the
    quantizers that take MatMul take them as they take a Linear on 3-D inputs."""
    outcome = pass_.apply(cnn_onnx, tmp_path, PassContext(Target("cpu"), CNN_INPUTS))
    after = op_histogram(outcome.path)
    assert after.get(integer_op) == 2 and "Gemm" not in after
    x = digits.test_x[:200]
    assert _mean_cosine(_run(outcome.path, x), _run(cnn_onnx, x)) > 0.99


def test_dynamic_int8_keeps_an_excluded_gemm_in_float(cnn_onnx, tmp_path):
    """The accuracy fallback names a Gemm; the quantizer, which rewrites it as a MatMul
    before quantizing, must leave it float all the same."""
    gemms = [n.name for n in onnx.load(str(cnn_onnx)).graph.node if n.op_type == "Gemm"]
    outcome = QuantizeDynamic(nodes_to_exclude=(gemms[0],)).apply(
        cnn_onnx, tmp_path, PassContext(Target("cpu"), CNN_INPUTS)
    )
    assert op_histogram(outcome.path).get("MatMulInteger") == len(gemms) - 1


@pytest.mark.parametrize(
    "pass_, reason",
    [
        pytest.param(QuantizeDynamic(), "no MatMul, .*, Gemm node", id="dynamic"),
        pytest.param(QuantizeInt4(), "no MatMul or Gemm with a constant weight", id="int4"),
    ],
)
def test_weight_quantizers_skip_a_model_of_convolutions(pass_, reason, tmp_path):
    class Convolutions(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3)

        def forward(self, x):
            return torch.relu(self.conv(x))

    path = _export(Convolutions().eval(), torch.zeros(2, 1, 8, 8), tmp_path / "conv.onnx")
    with pytest.raises(PassSkipped, match=reason):
        pass_.apply(path, tmp_path / "out", PassContext(Target("cpu"), CNN_INPUTS))


@pytest.mark.parametrize(
    "pass_, min_size_ratio, min_cosine",
    [
        # int8 on all 9 Linear weights (ONNX Runtime turns Gemm into MatMul): 3.4x measured.
        pytest.param(QuantizeDynamic(), 3.0, 0.98, id="dynamic"),
        # int4 on all 9 Linear weights, the 3 Gemm written as MatMul first.
        pytest.param(QuantizeInt4(), 3.0, 0.98, id="int4"),
        # Half-size weights; the graph itself does not shrink: 1.87x measured.
        pytest.param(Float16(), 1.7, 0.999, id="fp16"),
    ],
)
def test_transformer_variant_is_valid_smaller_and_agrees(
    pass_, min_size_ratio, min_cosine, transformer_onnx, transformer_x, transformer_fp32, tmp_path
):
    before = transformer_onnx.read_bytes()
    ctx = PassContext(Target("cpu"), TRANSFORMER_INPUTS)
    outcome = pass_.apply(transformer_onnx, tmp_path, ctx)
    assert transformer_onnx.read_bytes() == before, "the input model must not change"
    assert outcome.path == tmp_path / "model.onnx" and outcome.changed
    onnx.checker.check_model(str(outcome.path), full_check=True)
    assert _size_ratio(transformer_onnx, outcome.path) > min_size_ratio
    cosine = _mean_cosine(_run(outcome.path, transformer_x), transformer_fp32)
    assert cosine > min_cosine


def test_int4_replaces_each_constant_weight_matmul(transformer_onnx, tmp_path):
    outcome = QuantizeInt4().apply(
        transformer_onnx, tmp_path, PassContext(Target("cpu"), TRANSFORMER_INPUTS)
    )
    after = op_histogram(outcome.path)
    # 6 Linear exported as MatMul, 3 as Gemm (on 2-D inputs), all quantized.
    assert after["com.microsoft.MatMulNBits"] == 9 and "Gemm" not in after
    # The 4 MatMul left are attention's activation-by-activation products.
    assert after["MatMul"] == 4
    assert outcome.note == "9 MatMul -> MatMulNBits (int4, block 32)"
    node = next(n for n in onnx.load(str(outcome.path)).graph.node if n.op_type == "MatMulNBits")
    attrs = {a.name: a.i for a in node.attribute}
    assert (attrs["bits"], attrs["block_size"], attrs["accuracy_level"]) == (4, 32, 4)
    assert len(node.input) == 3, "symmetric int4 has no zero points"


def test_int4_asymmetric_adds_zero_points(
    transformer_onnx, transformer_x, transformer_fp32, tmp_path
):
    outcome = QuantizeInt4(symmetric=False).apply(
        transformer_onnx, tmp_path, PassContext(Target("cpu"), TRANSFORMER_INPUTS)
    )
    nodes = [n for n in onnx.load(str(outcome.path)).graph.node if n.op_type == "MatMulNBits"]
    assert nodes and all(len(n.input) == 4 for n in nodes)
    cosine = _mean_cosine(_run(outcome.path, transformer_x), transformer_fp32)
    assert cosine > 0.98


def test_int4_skips_when_blocks_exceed_every_weight(transformer_onnx, tmp_path):
    # The largest K here is 256 rows (the feed-forward's second Linear).
    with pytest.raises(PassSkipped, match="at least 512 rows"):
        QuantizeInt4(block_size=512).apply(
            transformer_onnx, tmp_path, PassContext(Target("cpu"), TRANSFORMER_INPUTS)
        )


@pytest.mark.parametrize("options", [{"block_size": 48}, {"block_size": 8}, {"accuracy_level": 5}])
def test_int4_refuses_options_matmulnbits_cannot_run(options):
    with pytest.raises(ValueError, match="quantize_int4"):
        QuantizeInt4(**options)


def test_int4_keeps_external_data_form(transformer_onnx, transformer_x, transformer_fp32, tmp_path):
    external = tmp_path / "src" / "model.onnx"
    external.parent.mkdir()
    onnx.save_model(
        onnx.load(str(transformer_onnx)),
        str(external),
        save_as_external_data=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    outcome = QuantizeInt4().apply(
        external, out_dir, PassContext(Target("cpu"), TRANSFORMER_INPUTS)
    )
    assert external_data_files(outcome.path) == [out_dir / "model.onnx.data"]
    cosine = _mean_cosine(_run(outcome.path, transformer_x), transformer_fp32)
    assert cosine > 0.98


def test_fp16_keeps_float32_io_and_stores_float16_weights(transformer_onnx, tmp_path):
    outcome = Float16().apply(
        transformer_onnx, tmp_path, PassContext(Target("cpu"), TRANSFORMER_INPUTS)
    )
    model = onnx.load(str(outcome.path))
    for value in (*model.graph.input, *model.graph.output):
        assert value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT, value.name
    floats = [
        t
        for t in model.graph.initializer
        if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    ]
    assert floats and all(t.data_type == onnx.TensorProto.FLOAT16 for t in floats)


class MaskMeanPooled(torch.nn.Module):
    """States mean-pooled over a mask cast to their dtype, as sentence encoders pool (the
    cast is the `_to_copy` the exporter writes as a Cast to float32)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(64, 64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        states = self.proj(x)
        mask = (x[..., :1] > -1.0).to(states.dtype)
        return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def test_fp16_of_a_mask_cast_to_float_loads_and_agrees(tmp_path):
    x = torch.randn(2, 16, 64)
    src = _export(MaskMeanPooled().eval(), x, tmp_path / "pooled.onnx")
    outcome = Float16().apply(src, tmp_path, PassContext(Target("cpu"), TRANSFORMER_INPUTS))
    assert _mean_cosine(_run(outcome.path, x.numpy()), _run(src, x.numpy())) > 0.999


def _masked_attention(path: Path) -> Path:
    """One attention head whose last four key positions are masked the way BERT exports do
    it: -3.4e38 added to their scores before Softmax."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    mask = np.zeros((1, 8, 8), np.float32)
    mask[..., 4:] = np.finfo(np.float32).min
    weights = {
        "wq": rng.standard_normal((16, 16)).astype(np.float32) / 4,
        "wk": rng.standard_normal((16, 16)).astype(np.float32) / 4,
        "wo": rng.standard_normal((16, 4)).astype(np.float32) / 4,
        "mask": mask,
    }
    nodes = [
        helper.make_node("MatMul", ["x", "wq"], ["q"]),
        helper.make_node("MatMul", ["x", "wk"], ["k"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["scores"]),
        helper.make_node("Add", ["scores", "mask"], ["masked"]),
        helper.make_node("Softmax", ["masked"], ["attn"], axis=-1),
        helper.make_node("MatMul", ["attn", "x"], ["mixed"]),
        helper.make_node("MatMul", ["mixed", "wo"], ["y"]),
    ]
    for node in nodes:
        node.name = f"{node.op_type}_{node.output[0]}"
    graph = helper.make_graph(
        nodes,
        "masked_attention",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8, 4])],
        [numpy_helper.from_array(a, n) for n, a in weights.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_weighted_only_static_int8_survives_an_attention_mask_fill(tmp_path):
    model = _masked_attention(tmp_path / "attention.onnx")
    x = np.random.default_rng(4).standard_normal((64, 8, 16)).astype(np.float32)
    ctx = PassContext(Target("cpu"), [TensorSpec("x", ("batch", 8, 16))], {"x": x})
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    fp32 = session.run(None, {"x": x})[0].reshape(64, -1)

    def cosine_of(pass_, name):
        out = pass_.apply(model, tmp_path / name, ctx).path
        quantized = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        return _mean_cosine(fp32, quantized.run(None, {"x": x})[0].reshape(64, -1))

    # Calibrating every tensor gives the masked scores a range of 3.4e38: the Softmax input
    # is quantized to nothing. Quantizing the ops with weights only leaves it in float.
    assert cosine_of(QuantizeStatic(reduce_range=False), "all") < 0.9
    assert cosine_of(QuantizeStatic(reduce_range=False, weighted_only=True), "weighted") > 0.99
    with pytest.raises(PassError, match="weighted_only=true"):
        QuantizeStatic("percentile", reduce_range=False).apply(model, tmp_path / "pct", ctx)


def test_fallback_candidates_are_the_nodes_quantization_changed(tmp_path):
    from passes.quant_prep import quantized_nodes

    model = _masked_attention(tmp_path / "attention.onnx")
    proto = onnx.load(str(model))
    constants = {i.name for i in proto.graph.initializer}
    by_name = {n.name: n for n in proto.graph.node}
    ctx = PassContext(Target("cpu"), [TensorSpec("x", ("batch", 8, 16))])
    dynamic = QuantizeDynamic().apply(model, tmp_path / "dynamic", ctx).path
    # Dynamic int8 replaces the three MatMuls with a constant weight, not the two that
    # multiply activations.
    changed = quantized_nodes(model, dynamic)
    assert len(changed) == 3 and all(by_name[name].input[1] in constants for name in changed)
    x = np.random.default_rng(0).standard_normal((16, 8, 16)).astype(np.float32)
    calibrated = PassContext(Target("cpu"), ctx.inputs, {"x": x})
    qdq = QuantizeStatic(reduce_range=False, weighted_only=True).apply(
        model, tmp_path / "static", calibrated
    )
    # In QDQ form the nodes stay, fed through DequantizeLinear: those are the changed ones.
    assert set(quantized_nodes(model, qdq.path)) >= set(changed)
    assert quantized_nodes(model, model) == []
