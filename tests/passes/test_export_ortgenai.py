"""The ONNX Runtime GenAI build: a folder og.Model opens, weights quantized blockwise as
asked and read back, and the builder's refusal of an architecture it has no builder for."""

import onnx
import pytest

from hardware.errors import UserError
from hardware.targets import Target
from passes.base import PassContext, PassError

pytest.importorskip("onnxruntime_genai")
from passes.export_ortgenai import ExportOrtGenAi  # noqa: E402

CPU = Target("cpu")


def test_int4_blocks_and_accuracy_level_are_what_was_asked(tiny_lms):
    outcome = tiny_lms.export(ExportOrtGenAi(weights="int4", block_size=32), "llama")
    assert (outcome.path / "genai_config.json").is_file()
    model = onnx.load(str(outcome.path / "model.onnx"), load_external_data=False)
    nbits = [n for n in model.graph.node if n.op_type == "MatMulNBits"]
    attrs = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in nbits]
    assert nbits and all(
        (a["bits"], a["block_size"], a["accuracy_level"]) == (4, 32, 4) for a in attrs
    )
    assert outcome.metrics["int4_share"] > 0.6


def test_int4_of_a_model_whose_head_shares_the_embedding(tiny_lms, tmp_path):
    outcome = ExportOrtGenAi(weights="int4").apply(
        tiny_lms.hf("qwen2"), tmp_path, PassContext(CPU, [])
    )
    # The embedding gathers from the head's int4 weight: counted once, as int4.
    assert outcome.metrics["int4_share"] > 0.9


def test_the_mixed_k_quant_keeps_the_head_and_sensitive_layers_in_int8(tiny_lms, tmp_path):
    outcome = ExportOrtGenAi(weights="int4", algorithm="k_quant_mixed").apply(
        tiny_lms.hf("llama"), tmp_path, PassContext(CPU, [])
    )
    model = onnx.load(str(outcome.path / "model.onnx"), load_external_data=False)
    bits = {
        n.name: onnx.helper.get_attribute_value(next(a for a in n.attribute if a.name == "bits"))
        for n in model.graph.node
        if n.op_type == "MatMulNBits"
    }
    assert bits["/lm_head/MatMul_Q8"] == 8 and bits["/model/layers.0/mlp/down_proj/MatMul_Q8"] == 8
    assert bits["/model/layers.1/mlp/down_proj/MatMul_Q4"] == 4
    assert 0 < outcome.metrics["int8_share"] < 1 and outcome.metrics["int4_share"] > 0


def test_int8_is_eight_bit_matmulnbits(tiny_lms, tmp_path):
    outcome = ExportOrtGenAi(weights="int8", block_size=64).apply(
        tiny_lms.hf("qwen2"), tmp_path, PassContext(CPU, [])
    )
    assert outcome.metrics["int8_share"] > 0.6 and "int8" in outcome.note
    assert not (tmp_path / "builder_cache").exists()


def test_an_architecture_without_a_builder_is_named(tiny_lms, tmp_path):
    with pytest.raises(PassError, match="does not support GPT2LMHeadModel"):
        ExportOrtGenAi().apply(tiny_lms.hf("gpt2"), tmp_path, PassContext(CPU, []))


def test_options_are_checked_when_made():
    with pytest.raises(UserError, match="block_size 48"):
        ExportOrtGenAi(weights="int4", block_size=48)
    with pytest.raises(UserError, match="accuracy_level 7"):
        ExportOrtGenAi(accuracy_level=7)
    with pytest.raises(UserError, match="algorithm 'gptq'"):
        ExportOrtGenAi(weights="int4", algorithm="gptq")
    with pytest.raises(UserError, match="int8 and int4 weights only"):
        ExportOrtGenAi(algorithm="k_quant")
    assert ExportOrtGenAi().unsupported(CPU) is None
