"""Parsing `--input NAME:DIMS[:DTYPE]` flags, and the errors a bad flag gets."""

import pytest

from optimize.config.input_flags import parse_input_flag
from optimize.errors import UserError
from passes.base import TensorSpec


@pytest.mark.parametrize(
    "text",
    ["x", "x:", ":1,2", "x:1,,2", "x:1,2:float33", "x:1.5,2", "x:1:float32:extra"],
)
def test_bad_input_flag_shows_the_expected_form(text):
    with pytest.raises(UserError, match=f"bad --input '{text}'"):
        parse_input_flag(text)


def test_input_flag_parses_sizes_names_and_dtype():
    assert parse_input_flag("ids:batch,128:int64") == TensorSpec("ids", ("batch", 128), "int64")
    assert parse_input_flag("x:1,3") == TensorSpec("x", (1, 3), "float32")
