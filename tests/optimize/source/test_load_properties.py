"""Whatever bytes a model file holds, loading it ends in a Source or in one line of bad
input (exit 2 through the CLI), in seconds: never another exception, a crash or a hang."""

import time
from datetime import timedelta

import pytest
import torch
from cli_runs import error_of
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from optimize.errors import UserError
from optimize.source.load import load_source

# Each example may open the file in ONNX Runtime or PyTorch; none should take long.
PER_EXAMPLE = timedelta(seconds=20)
PROPERTY = settings(
    max_examples=40,
    deadline=PER_EXAMPLE,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# How each form's bytes begin, so random tails reach each loader, not just the first check.
PREFIXES = [b"", b"PK\x03\x04", b"\x80\x02", b"\x08\x07\x12\x07pytorch", b"\x08\x08:"]


@pytest.fixture(scope="module")
def model_bytes(digits_files, digits_cnn, digits_cnn_onnx, tmp_path_factory):
    """The digits CNN in each form a user saves it in, as bytes."""
    folder = tmp_path_factory.mktemp("forms")
    torch.save(digits_cnn, folder / "whole.pt")
    return {
        "torchscript": (digits_files / "cnn.pt").read_bytes(),
        "exported_program": (digits_files / "cnn.pt2").read_bytes(),
        "pickled_module": (folder / "whole.pt").read_bytes(),
        "onnx": digits_cnn_onnx.read_bytes(),
    }


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("scratch") / "model.bin"


def _loads_or_says_why(path) -> None:
    """Load `path` as the CLI does; a refusal must be one line."""
    start = time.monotonic()
    try:
        load_source(path, ["x:batch,1,8,8"])
    except UserError as exc:
        assert len(str(exc).strip().splitlines()) == 1, str(exc)
    assert time.monotonic() - start < PER_EXAMPLE.total_seconds()


@PROPERTY
@given(prefix=st.sampled_from(PREFIXES), tail=st.binary(min_size=1, max_size=4096))
@example(prefix=b"PK\x03\x04", tail=b"\x00" * 64)
def test_random_bytes_are_refused_in_one_line(scratch, prefix, tail):
    scratch.write_bytes(prefix + tail)
    _loads_or_says_why(scratch)


@PROPERTY
@given(
    form=st.sampled_from(["torchscript", "exported_program", "pickled_module", "onnx"]),
    kept=st.floats(0.0, 0.999),
)
def test_truncated_files_are_refused_in_one_line(model_bytes, scratch, form, kept):
    whole = model_bytes[form]
    scratch.write_bytes(whole[: max(1, int(len(whole) * kept))])
    with pytest.raises(UserError) as refusal:
        load_source(scratch, ["x:batch,1,8,8"])
    assert len(str(refusal.value).strip().splitlines()) == 1


@PROPERTY
@given(data=st.data())
def test_mutated_onnx_protobufs_load_or_are_refused_in_one_line(model_bytes, scratch, data):
    mutated = bytearray(model_bytes["onnx"])
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        action = data.draw(st.sampled_from(["set", "delete", "insert"]))
        if action == "set":
            mutated[at] = data.draw(st.integers(0, 255))
        elif action == "delete":
            del mutated[at : at + data.draw(st.integers(1, 16))]
        else:
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        if not mutated:
            mutated = bytearray(b"\x00")
    scratch.write_bytes(bytes(mutated))
    _loads_or_says_why(scratch)


def test_a_damaged_model_through_the_cli_is_one_line(model_bytes, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(model_bytes["onnx"][: len(model_bytes["onnx"]) // 2])
    code, output = error_of(["run", str(path), "--out", str(tmp_path / "out")])
    assert code == 2 and len(output.splitlines()) == 1 and "Traceback" not in output
    assert not (tmp_path / "out" / "report.json").exists()
