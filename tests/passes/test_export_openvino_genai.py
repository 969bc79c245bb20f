"""The OpenVINO GenAI export: a folder LLMPipeline loads with its tokenizer, weights
compressed as asked and read back, data-aware int4 on a text file, and a clear refusal
when the group size does not divide the model's widths."""

import pytest

from hardware.errors import UserError
from hardware.targets import Target
from passes.base import PassContext, PassError
from passes.export_openvino_genai import INSTALL, ExportOpenVinoGenAi, exporter_python  # noqa: E402

if exporter_python() is None:
    pytest.skip(f"optimum-intel is not installed: {INSTALL}", allow_module_level=True)

CPU = Target("cpu")


def test_the_folder_holds_the_model_and_the_converted_tokenizer(tiny_lms):
    outcome = tiny_lms.export(ExportOpenVinoGenAi(), "llama")
    names = {p.name for p in outcome.path.iterdir()}
    assert {"openvino_model.xml", "openvino_tokenizer.xml", "openvino_detokenizer.xml"} <= names
    assert outcome.metrics == {"float_share": 1.0} and "100% float" in outcome.note


def test_int4_data_aware_on_a_text_file(tiny_lms, tmp_path):
    from llm_models import TEXT

    dataset = tmp_path / "calibration.txt"
    dataset.write_text("\n\n".join(TEXT.splitlines()))
    pass_ = ExportOpenVinoGenAi(
        weights="int4",
        symmetric=True,
        group_size=32,
        ratio=0.5,
        awq=True,
        scale_estimation=True,
        dataset=str(dataset),
        samples=8,
    )
    out = tmp_path / "out"
    out.mkdir()
    outcome = pass_.apply(tiny_lms.hf("llama"), out, PassContext(CPU, []))
    # Half the ratio-defining layers in int4, the rest and the embedding in int8.
    assert 0.1 < outcome.metrics["int4_share"] < 0.6 and outcome.metrics["int8_share"] > 0.4
    assert not (out / "openvino_float").exists()


def test_a_group_size_that_does_not_divide_the_widths_is_refused_before_export(tiny_lms, tmp_path):
    with pytest.raises(
        PassError,
        match=r"group size 128 does not divide the input width 64 \(hidden_size\).*group_size=64",
    ):
        ExportOpenVinoGenAi(weights="int4", group_size=128).apply(
            tiny_lms.hf("llama"), tmp_path, PassContext(CPU, [])
        )
    assert not any(tmp_path.iterdir())


def test_scale_estimation_without_text_is_refused(tiny_lms, tmp_path):
    with pytest.raises(PassError, match="scale estimation needs calibration text"):
        ExportOpenVinoGenAi(weights="int4", group_size=32, scale_estimation=True).apply(
            tiny_lms.hf("llama"), tmp_path, PassContext(CPU, [])
        )


def test_options_are_checked_when_made():
    with pytest.raises(UserError, match="weights 'int3'"):
        ExportOpenVinoGenAi(weights="int3")
    with pytest.raises(UserError, match="awq applies to int4 weights only"):
        ExportOpenVinoGenAi(weights="int8", awq=True)
    assert "NVIDIA" in ExportOpenVinoGenAi().unsupported(Target("gpu"))
    assert ExportOpenVinoGenAi().unsupported(CPU) is None
