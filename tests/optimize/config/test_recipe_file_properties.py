"""Whatever a recipe file holds, reading it ends in a Recipe or in one line naming the
mistake: never another exception."""

import json
import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from optimize.config.recipe_file import load_recipe
from optimize.errors import UserError

EXAMPLE = (Path(__file__).resolve().parents[3] / "examples" / "optimize.toml").read_text()
PROPERTY = settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _toml_float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return repr(x)


scalars = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(_toml_float),
    st.text(max_size=20).map(json.dumps),
    st.sampled_from(["true", "false", '""', '"cpu"', '"gpu:7"', '"fp16"', '"all"']),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=4).map(lambda items: f"[{', '.join(items)}]"),
    st.dictionaries(
        st.sampled_from(["pass", "calibration", "level", "x"]), scalars, max_size=3
    ).map(lambda table: "{" + ", ".join(f"{k} = {v}" for k, v in table.items()) + "}"),
)


def _reads_or_says_why(path: Path) -> None:
    try:
        recipe = load_recipe(path)
    except UserError as exc:
        assert len(str(exc).strip().splitlines()) == 1, str(exc)
        return
    recipe.chains_to_try(["avx512_vnni"])


@PROPERTY
@given(data=st.data())
def test_a_recipe_with_any_values_reads_or_names_the_mistake(tmp_path, data):
    lines = EXAMPLE.splitlines()
    settable = [i for i, line in enumerate(lines) if " = " in line and not line.startswith("#")]
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.sampled_from(settable))
        key = lines[at].split(" = ", 1)[0]
        lines[at] = f"{key} = {data.draw(values)}"
    path = tmp_path / "optimize.toml"
    path.write_text("\n".join(lines))
    _reads_or_says_why(path)


@PROPERTY
@given(content=st.one_of(st.binary(max_size=512), st.integers(0, len(EXAMPLE))))
def test_random_or_truncated_recipe_files_read_or_name_the_mistake(tmp_path, content):
    path = tmp_path / "optimize.toml"
    if isinstance(content, int):
        path.write_text(EXAMPLE[:content])
    else:
        path.write_bytes(content)
    _reads_or_says_why(path)
