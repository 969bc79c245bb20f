"""A model file seen before is known by its content: its inputs without loading it."""

import shutil

from optimize.source.known import load_known_source
from optimize.source.load import SourceSpec


def test_a_known_file_loads_its_model_only_when_asked(digits_files, tmp_path):
    cache = tmp_path / "cache"
    first = load_known_source(SourceSpec(digits_files / "cnn.pt2"), cache)
    assert first.reload is None and first.model is not None
    again = load_known_source(SourceSpec(digits_files / "cnn.pt2"), cache)
    assert again.reload is not None  # known: nothing loaded yet
    assert (again.form, again.inputs, again.source_id) == (
        first.form,
        first.inputs,
        first.source_id,
    )
    assert type(again.model) is type(first.model) and again.reload is None


def test_other_content_or_options_are_loaded_afresh(digits_files, tmp_path):
    cache = tmp_path / "cache"
    load_known_source(SourceSpec(digits_files / "cnn.pt2"), cache)
    flags = ("x:batch,1,8,8",)
    assert load_known_source(SourceSpec(digits_files / "cnn.pt2", flags), cache).reload is None
    other = tmp_path / "cnn.pt2"
    shutil.copy(digits_files / "cnn.pt", other)  # same name, other content: TorchScript
    changed = load_known_source(SourceSpec(other, flags), cache)
    assert changed.reload is None and changed.form == "torchscript"
