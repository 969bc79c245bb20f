"""An ONNX token encoder built in code, saved with external data: a small model whose
passes write external data, and whose position slice ONNX Runtime's symbolic shape inference
cannot follow, as it cannot BERT's."""

import numpy as np

# A token encoder's shape: a vocabulary, positions up to 64 and a feed-forward block.
VOCABULARY, POSITIONS, WIDTH = 1000, 64, 64


def save_token_encoder(path):
    """An ONNX token encoder saved with its weights in `path`.data: token ids (batch,
    sequence) to mean-pooled (batch, WIDTH) features. The position embedding is sliced to
    the sequence's length, as BERT's is, which ONNX Runtime's symbolic shape inference
    cannot follow: the quantizers' pre-processing takes its fallback."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = {
        "word_embeddings": rng.normal(0, 0.1, (VOCABULARY, WIDTH)).astype(np.float32),
        "position_embeddings": rng.normal(0, 0.1, (POSITIONS, WIDTH)).astype(np.float32),
        "position_ids": np.arange(POSITIONS, dtype=np.int64)[None],
        "w1": rng.normal(0, 0.1, (WIDTH, 4 * WIDTH)).astype(np.float32),
        "b1": np.zeros(4 * WIDTH, np.float32),
        "w2": rng.normal(0, 0.1, (4 * WIDTH, WIDTH)).astype(np.float32),
        "zero": np.array([0], np.int64),
        "one": np.array([1], np.int64),
    }
    nodes = [
        helper.make_node("Gather", ["word_embeddings", "input_ids"], ["tokens"]),
        helper.make_node("Shape", ["input_ids"], ["length"], start=1, end=2),
        helper.make_node("Slice", ["position_ids", "zero", "length", "one"], ["positions"]),
        helper.make_node("Gather", ["position_embeddings", "positions"], ["placed"]),
        helper.make_node("Add", ["tokens", "placed"], ["embedded"]),
        helper.make_node("MatMul", ["embedded", "w1"], ["up"]),
        helper.make_node("Add", ["up", "b1"], ["biased"]),
        helper.make_node("Relu", ["biased"], ["active"]),
        helper.make_node("MatMul", ["active", "w2"], ["down"]),
        helper.make_node("ReduceMean", ["down", "one"], ["features"], keepdims=0),
    ]
    for node in nodes:  # named, as exporters name them: the fallback excludes nodes by name
        node.name = node.output[0]
    graph = helper.make_graph(
        nodes,
        "token_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", WIDTH])],
        [numpy_helper.from_array(array, name) for name, array in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path), save_as_external_data=True, location=f"{path.name}.data")
    return path
