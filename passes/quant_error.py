"""How much quantizing each node would hurt the model's outputs, estimated without building
a model per node: int8 rounding noise is injected at one node at a time (its weight and,
unless only weights are quantized, its input activation) in one float session, and the
outputs compared with clean ones. Ranks the nodes the accuracy fallback keeps in float."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from passes.quant_prep import preprocess_for_quantization

NOISE_SEED = 0


def rounding_step(tensor: np.ndarray, symmetric: bool) -> float:
    """The step of 8-bit min-max quantization of `tensor`: symmetric int8 for weights,
    asymmetric uint8 spanning zero for activations."""
    values = np.asarray(tensor, dtype=np.float64)
    if values.size == 0:
        return 0.0
    if symmetric:
        return float(np.abs(values).max()) / 127
    return (max(float(values.max()), 0.0) - min(float(values.min()), 0.0)) / 255


def quantization_errors(
    src: Path, op_types: Iterable[str], weights_only: bool, feeds: dict[str, np.ndarray]
) -> dict[str, float]:
    """Per node of `op_types` in the pre-processed model (the names nodes_to_exclude takes),
    the relative L2 error of the model's outputs on `feeds` when that node alone gets the
    rounding noise of 8-bit quantization (uniform over one step) on its weight and, unless
    `weights_only`, on its input activation. A higher figure hurts more."""
    import onnx
    from onnx import numpy_helper

    wanted = set(op_types)
    with tempfile.TemporaryDirectory() as scratch:
        prepared = preprocess_for_quantization(src, Path(scratch))
        model = onnx.load(str(prepared))
        weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        nodes = [n for n in model.graph.node if n.op_type in wanted and n.name]
        names = [n.input[0] for n in nodes if n.op_type != "Gather" and n.input[0] not in weights]
        activations = {} if weights_only else _float_values(model, sorted(set(names)), feeds)
        noisy = _with_noise_inputs(model, nodes, weights, weights_only)
        probe = Path(scratch) / "probe.onnx"
        onnx.save(model, str(probe), save_as_external_data=True, location="probe.onnx.data")
        return _errors_by_node(probe, noisy, feeds, {**weights, **activations})


def _session(model_or_path):
    """A CPU session with graph optimizations off: intermediate tensors stay as named, and
    injected noise lands where the quantizer would round."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model_or_path, options, providers=["CPUExecutionProvider"])


def _float_values(model, names: list[str], feeds: dict[str, np.ndarray]):
    """The tensors called `names` in a float run of `model` (left unchanged) on `feeds`."""
    import onnx

    if not names:
        return {}
    with tempfile.TemporaryDirectory() as scratch:
        copy = onnx.ModelProto()
        copy.CopyFrom(model)
        copy.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
        path = Path(scratch) / "values.onnx"
        onnx.save(copy, str(path), save_as_external_data=True, location="values.onnx.data")
        session = _session(str(path))
        inputs = {i.name for i in session.get_inputs()}
        outputs = session.run(names, {n: feeds[n] for n in inputs})
    return dict(zip(names, outputs, strict=True))


def _with_noise_inputs(model, nodes, weights: dict[str, np.ndarray], weights_only: bool):
    """Add a noise input to each node's weight (and activation) through an Add placed just
    before the node, in place; returns {node name: [(noise input, tensor it perturbs,
    symmetric)]}."""
    from onnx import TensorProto, helper

    wanted = {id(n) for n in nodes}
    noisy, ordered = {}, []
    for node in model.graph.node:
        if id(node) not in wanted:
            ordered.append(node)
            continue
        # A Gather's table is its first input, and it has no activation to quantize.
        position = 0 if node.op_type == "Gather" else 1
        targets = []
        if len(node.input) > position and node.input[position] in weights:
            targets.append((position, True))
        if not weights_only and node.op_type != "Gather" and node.input[0] not in weights:
            targets.append((0, False))
        noisy[node.name] = []
        for position, symmetric in targets:
            clean = node.input[position]
            noise, perturbed = f"{node.name}/noise{position}", f"{node.name}/noisy{position}"
            model.graph.input.append(helper.make_tensor_value_info(noise, TensorProto.FLOAT, None))
            ordered.append(helper.make_node("Add", [clean, noise], [perturbed]))
            node.input[position] = perturbed
            noisy[node.name].append((noise, clean, symmetric))
        ordered.append(node)
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    return noisy


def _errors_by_node(
    probe: Path, noisy: dict, feeds: dict[str, np.ndarray], tensors: dict[str, np.ndarray]
) -> dict[str, float]:
    """Run the probe with no noise, then with one node's noise at a time; `tensors` holds
    the clean weights and activations the noise is sized to."""
    session = _session(str(probe))
    outputs = [o.name for o in session.get_outputs()]
    noise_inputs = {noise: clean for entries in noisy.values() for noise, clean, _ in entries}
    base = {i.name: feeds[i.name] for i in session.get_inputs() if i.name not in noise_inputs}
    zeros = {n: np.zeros(tensors[c].shape, np.float32) for n, c in noise_inputs.items()}

    def outputs_with(feed: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([o.astype(np.float64).ravel() for o in session.run(outputs, feed)])

    reference = outputs_with({**base, **zeros})
    scale = float(np.linalg.norm(reference)) or 1.0
    rng = np.random.default_rng(NOISE_SEED)
    errors = {}
    for name, entries in noisy.items():
        feed = {**base, **zeros}
        for noise, clean, symmetric in entries:
            step = rounding_step(tensors[clean], symmetric)
            feed[noise] = (rng.uniform(-0.5, 0.5, tensors[clean].shape) * step).astype(np.float32)
        errors[name] = float(np.linalg.norm(outputs_with(feed) - reference)) / scale
    return errors
