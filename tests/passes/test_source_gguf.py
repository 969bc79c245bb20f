"""The GGUF as given: a copy of the user's file, byte for byte, with its weights' precision
read back; a model not given as a GGUF has none to keep."""

import pytest
from llm_models import write_small_gguf

from hardware.targets import Target
from passes.base import PassContext, PassError
from passes.source_gguf import SourceGguf

pytest.importorskip("gguf")

CPU = Target("cpu")


def test_the_gguf_given_is_kept_as_it_is(tiny_lms, tmp_path):
    given = write_small_gguf(tmp_path / "model.Q8_0.gguf")
    before = given.read_bytes()
    ctx = PassContext(CPU, [], source_file=given)
    outcome = SourceGguf().apply(tiny_lms.hf("llama"), tmp_path / "out", ctx)
    assert outcome.path.read_bytes() == before == given.read_bytes()
    assert outcome.path != given and not outcome.path.samefile(given)
    assert outcome.metrics["int8_share"] > 0.9 and "model.Q8_0.gguf as given" in outcome.note


def test_a_model_not_given_as_a_gguf_has_none_to_keep(tiny_lms, tmp_path):
    folder = tiny_lms.hf("llama")
    with pytest.raises(PassError, match="not given as a GGUF file"):
        SourceGguf().apply(folder, tmp_path, PassContext(CPU, [], source_file=folder))
