"""A language model as users export it: keyword inputs, a dynamic batch with a declared
bound and a dynamic sequence. It loads, runs end to end, and its generated token ids cover
the vocabulary, from the .pt2 and from an ONNX file alike."""

import numpy as np
import pytest
from figures import QUICK_MEASURE

from optimize.api import run
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe
from optimize.data.inputs import evaluation_data
from optimize.source.load import load_source
from passes.ort_graph import OrtGraphOptimize
from passes.torch_run import run_torch

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

VOCABULARY = 120
MAX_ROWS = 16


@pytest.fixture(scope="module")
def bert():
    config = transformers.BertConfig(
        vocab_size=VOCABULARY,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    return transformers.BertModel(config).eval()


@pytest.fixture(scope="module")
def keyword_program(bert, tmp_path_factory):
    ids = torch.randint(0, VOCABULARY, (2, 16))
    batch, sequence = torch.export.Dim("batch", max=MAX_ROWS), torch.export.Dim("seq", max=64)
    program = torch.export.export(
        bert,
        (),
        {"input_ids": ids, "attention_mask": torch.ones_like(ids)},
        dynamic_shapes={
            "input_ids": {0: batch, 1: sequence},
            "attention_mask": {0: batch, 1: sequence},
        },
    )
    path = tmp_path_factory.mktemp("keywords") / "bert.pt2"
    torch.export.save(program, path)
    return path


def test_a_keyword_program_loads_as_positional_with_its_bounds_and_vocabulary(
    keyword_program, bert
):
    source = load_source(keyword_program)
    assert [s.name for s in source.inputs] == ["input_ids", "attention_mask"]
    assert source.max_batch == MAX_ROWS
    assert source.index_limits == {"input_ids": VOCABULARY}
    feeds = {
        "input_ids": np.random.default_rng(0).integers(0, VOCABULARY, (3, 20)),
        "attention_mask": np.ones((3, 20), dtype=np.int64),
    }
    expected = bert(**{k: torch.from_numpy(v) for k, v in feeds.items()}).last_hidden_state
    (hidden, *_) = run_torch(source.model, feeds, source.inputs)
    np.testing.assert_allclose(hidden, expected.detach().numpy(), atol=1e-5)
    generated = evaluation_data(source, source.inputs, None, 8, use_saved_samples=False)
    ids = np.concatenate([feeds["input_ids"] for feeds, _ in generated.batches])
    assert ids.max() > VOCABULARY // 2 and ids.min() >= 0


def test_a_keyword_program_runs_end_to_end(keyword_program, tmp_path):
    results = run(
        Recipe(
            model=keyword_program,
            out=tmp_path / "out",
            chains=[Chain((OrtGraphOptimize("basic"),), "folded")],
            builtin=False,
            measure=QUICK_MEASURE,
        )
    )
    assert results.pick is not None and results.pick.within_tolerance
    assert all(v.measurements.throughput_batch <= MAX_ROWS for v in results.variants if v.measured)


def test_an_onnx_language_model_gets_token_ids_over_its_vocabulary(bert, tmp_path):
    class Hidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids):
            return self.bert(input_ids=input_ids, use_cache=False).last_hidden_state

    ids = torch.randint(0, VOCABULARY, (2, 16))
    path = tmp_path / "bert.onnx"
    torch.onnx.export(
        Hidden(),
        (ids,),
        str(path),
        input_names=["input_ids"],
        dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}},
        dynamo=False,
    )
    source = load_source(path)
    assert source.index_limits == {"input_ids": VOCABULARY}
