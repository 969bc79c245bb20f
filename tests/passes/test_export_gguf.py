"""The GGUF export: where llama-cpp-python or llama.cpp's converter is missing it says how to
get them; where both are present it converts and quantizes with llama.cpp's own tools."""

import pytest

from hardware.errors import UserError
from hardware.runtimes.llama_cpp import llama_cpp_missing
from hardware.targets import Target
from passes.export_gguf import ExportGguf, find_converter

CPU = Target("cpu")


def test_options_are_checked_when_made():
    with pytest.raises(UserError, match="weights 'q3_k'"):
        ExportGguf(weights="q3_k")


def test_what_is_missing_is_named_with_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv("LLAMA_CPP_DIR", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    reason = ExportGguf(llama_cpp_dir=str(tmp_path)).unsupported(CPU)
    if llama_cpp_missing():
        assert reason == llama_cpp_missing() and "optimize[llamacpp]" in reason
    else:
        assert "convert_hf_to_gguf.py was not found" in reason and "llama_cpp_dir=PATH" in reason


def test_the_converter_is_found_in_the_folder_given(tmp_path, monkeypatch):
    monkeypatch.delenv("LLAMA_CPP_DIR", raising=False)
    (tmp_path / "convert_hf_to_gguf.py").write_text("")
    assert find_converter(str(tmp_path)) == tmp_path / "convert_hf_to_gguf.py"
    monkeypatch.setenv("LLAMA_CPP_DIR", str(tmp_path))
    assert find_converter("") == tmp_path / "convert_hf_to_gguf.py"


@pytest.mark.skipif(
    bool(llama_cpp_missing() or ExportGguf().unsupported(CPU)),
    reason=str(llama_cpp_missing() or ExportGguf().unsupported(CPU)),
)
def test_q4_k_m_is_made_by_llama_cpps_quantizer(tiny_lms):
    outcome = tiny_lms.export(ExportGguf(weights="q4_k_m"), "llama-sentencepiece")
    assert (
        outcome.path.name == "model.gguf" and not (outcome.path.parent / "model.f16.gguf").exists()
    )
    # k-quants need rows of 256: the tiny model's 64-wide rows fall back to llama.cpp's
    # nearest block format, which the read-back shows.
    assert outcome.metrics["float_share"] < 0.5 and "GGUF of LlamaForCausalLM" in outcome.note
