"""The recipe file: it loads into real passes, round-trips, and names every mistake."""

import dataclasses
import re
from pathlib import Path

import pytest

from hardware.targets import Target
from optimize.config.chains import Chain, builtin_chains
from optimize.config.input_flags import parse_input_flags
from optimize.config.limits import Limits
from optimize.config.plan import ModelProbe, describe_plan
from optimize.config.recipe import Recipe
from optimize.config.recipe_file import load_recipe
from optimize.config.recipe_toml import recipe_to_toml
from optimize.errors import UserError
from passes.fp16 import Float16
from passes.onnxscript_optimize import OnnxscriptOptimize
from passes.ort_graph import OrtGraphOptimize
from passes.quantize_dynamic import QuantizeDynamic
from passes.quantize_int4 import QuantizeInt4
from passes.quantize_static import QuantizeStatic

# A model like the digits CNN: small, fast, on generated inputs.
SMALL_MODEL = ModelProbe(
    size_mb=0.2,
    sample_ms=0.1,
    exported=True,
    eval_samples=64,
    calibration_samples=64,
    throughput_batch=32,
)
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "optimize.toml"

FULL = """
model = "models/net.pt"
target = "gpu:1"
out = "../out"
model_code = "net.py"
trust_pickle = true
builtin = false

[[inputs]]
name = "ids"
dims = ["batch", 128]
dtype = "int64"

[[inputs]]
name = "mask"
dims = ["batch", 128]

[export]
exporter = "torchscript"
opset = 17

[data]
eval = "data/eval.npz"
calibration = "data/calib.npz"

[limits]
max_accuracy_drop = 0.5
min_cosine = 0.99
max_latency_ms = 3
max_size_mb = 12.5

[measure]
seconds = 0.5
torch_runtimes = false

[serve]
sweep = true
slo_p99_ms = 20
price_per_hour = 0.8

[[chains]]
why = 'percentile int8, then "all" layouts \\ fusions — for this CPU'
passes = [
  {pass = "quantize_static", calibration = "percentile", nodes_to_exclude = ["/fc/Gemm"]},
  {pass = "ort_graph", level = "all"},
]

[[chains]]
why = "half precision but keep LayerNorm in float"
passes = ["onnxscript_optimize", {pass = "fp16", block_list = ["LayerNormalization", "Softmax"]}]

[[chains]]
why = "int4 in bigger blocks"
passes = [{pass = "quantize_int4", block_size = 64, symmetric = false}]
"""


def _write(folder: Path, text: str, name: str = "optimize.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(UserError) as caught:
        load_recipe(_write(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_full_recipe_loads_into_typed_fields_and_real_passes(tmp_path, monkeypatch):
    monkeypatch.chdir("/")  # paths follow the recipe file, not the working folder
    recipe = load_recipe(_write(tmp_path, FULL))
    assert recipe.model == tmp_path / "models" / "net.pt"
    assert recipe.out == tmp_path.parent / "out"
    assert recipe.data.eval == tmp_path / "data" / "eval.npz"
    assert recipe.data.calibration == tmp_path / "data" / "calib.npz"
    assert recipe.model_code == tmp_path / "net.py"
    assert (recipe.target, recipe.trust_pickle, recipe.builtin) == ("gpu:1", True, False)
    assert recipe.limits == Limits(
        max_accuracy_drop=0.5, min_cosine=0.99, max_latency_ms=3.0, max_size_mb=12.5
    )
    assert (recipe.measure.seconds, recipe.measure.torch_runtimes) == (0.5, False)
    assert (recipe.export.exporter, recipe.export.opset) == ("torchscript", 17)
    assert (recipe.serve.sweep, recipe.serve.slo_p99_ms, recipe.serve.price_per_hour) == (
        True,
        20.0,
        0.8,
    )
    # The inputs are --input texts: the CLI's parser takes them, and a dtype not stated
    # stays unstated.
    assert recipe.input_flags == ["ids:batch,128:int64", "mask:batch,128"]
    flags = parse_input_flags(recipe.input_flags)
    assert [f.spec.dims for f in flags] == [("batch", 128), ("batch", 128)]
    assert [f.dtype_given for f in flags] == [True, False]
    first, second, third = recipe.chains
    assert first.passes == (
        QuantizeStatic("percentile", nodes_to_exclude=("/fc/Gemm",)),
        OrtGraphOptimize("all"),
    )
    assert first.why.startswith('percentile int8, then "all" layouts \\ fusions')
    assert second.passes == (
        OnnxscriptOptimize(),
        Float16(block_list=("LayerNormalization", "Softmax")),
    )
    assert third.passes == (QuantizeInt4(block_size=64, symmetric=False),)


def test_a_minimal_recipe_takes_the_cli_defaults(tmp_path):
    recipe = load_recipe(_write(tmp_path, 'model = "m.onnx"\n'))
    assert recipe == Recipe(model=tmp_path / "m.onnx")
    assert (recipe.target, recipe.out, recipe.builtin, recipe.chains) == (
        "cpu",
        Path("optimized"),
        True,
        [],
    )
    assert recipe.limits == Limits()
    assert recipe.measure.seconds == 1.0


@pytest.mark.parametrize("relative", [True, False], ids=["relative-paths", "absolute-paths"])
def test_load_dump_load_gives_an_equal_recipe(tmp_path, relative):
    first = load_recipe(_write(tmp_path, FULL))
    elsewhere = tmp_path / "copy"
    elsewhere.mkdir()
    text = recipe_to_toml(first, relative_to=tmp_path if relative else None)
    again = load_recipe(_write(tmp_path if relative else elsewhere, text, "again.toml"))
    assert again == first
    assert ("../out" in text) is relative


def test_the_example_loads_with_its_documented_chains():
    recipe = load_recipe(EXAMPLE)
    root = EXAMPLE.parent.parent
    assert recipe.model == root / "build" / "digits_cnn.pt2"
    assert recipe.data.eval == root / "build" / "digits_cnn_eval.npz"
    assert recipe.data.calibration == root / "build" / "digits_cnn_calibration.npz"
    assert recipe.builtin and recipe.target == "cpu"
    assert [c.passes for c in recipe.chains] == [
        (QuantizeStatic("percentile"), OrtGraphOptimize("all")),
        (QuantizeStatic("entropy"),),
        (OnnxscriptOptimize(), QuantizeStatic("percentile", reduce_range=False)),
    ]
    assert all(c.why for c in recipe.chains)


MISTAKES = [
    (
        'model = "m"\n[[chains]]\nwhy = "a"\npasses = []\n[[chains]]\nwhy = "b"\n'
        'passes = [{pass = "quantise_static"}]\n',
        "chains[1].passes[0]: unknown pass 'quantise_static' (did you mean "
        "'quantize_static'?); known: export_gguf, export_openvino_genai, export_ortgenai, "
        "fp16, onnxscript_optimize, ort_graph, prune_magnitude, prune_structured, "
        "quantize_dynamic, quantize_int4, quantize_nncf, quantize_static",
    ),
    (
        'model = "m"\n[limits]\nmax_acuracy_drop = 2\n',
        "limits.max_acuracy_drop: unknown key (did you mean 'max_accuracy_drop'?); known: "
        "max_accuracy_drop, max_perplexity_increase, max_relative_accuracy_drop, min_cosine, "
        "min_top1_agreement, max_latency_ms, max_size_mb, max_memory_mb",
    ),
    ('model = "m"\nmodle = "n"\n', "modle: unknown key (did you mean 'model'?); known: model"),
    (
        'model = "m"\n[limits]\nmin_cosine = "high"\n',
        "limits.min_cosine: expected a number, got 'high'",
    ),
    (
        'model = "m"\n[limits]\nmin_cosine = 1.5\n',
        "limits.min_cosine: expected a cosine from -1 to 1, got 1.5",
    ),
    ('model = "m"\n[measure]\nseconds = 0\n', "measure.seconds: expected a number above 0"),
    (
        'model = "m"\n[[chains]]\nwhy = "w"\npasses = [{pass = "quantize_static", '
        'calibration = "median"}]\n',
        "chains[0].passes[0]: calibration 'median': use one of minmax, entropy, percentile",
    ),
    (
        'model = "m"\n[[chains]]\nwhy = "w"\npasses = [{pass = "quantize_int4", block_size = 48}]\n',
        "chains[0].passes[0]: quantize_int4 block_size 48: use a power of two >= 16",
    ),
    (
        'model = "m"\n[[chains]]\nwhy = "w"\npasses = [{pass = "ort_graph", levl = "all"}]\n',
        "chains[0].passes[0].levl: unknown option of ort_graph (did you mean 'level'?); "
        "known: level",
    ),
    (
        'model = "m"\n[[chains]]\nwhy = "w"\npasses = [{pass = "quantize_dynamic", '
        'reduce_range = "no"}]\n',
        "chains[0].passes[0].reduce_range: expected true or false, got 'no'",
    ),
    (
        'model = "m"\n[[chains]]\nwhy = "w"\npasses = [{pass = "fp16", block_list = ["Add", 3]}]\n',
        "chains[0].passes[0].block_list[1]: expected a string, got 3",
    ),
    (
        'model = "m"\n[[chains]]\nwhy = "w"\npasses = ["export", "fp16"]\n',
        "chains[0].passes[0]: export runs before every chain by itself; leave it out",
    ),
    (
        'model = "m"\n[[chains]]\npasses = ["fp16"]\n',
        "chains[0].why: required key is missing",
    ),
    ('target = "cpu"\n', "model: required key is missing"),
    (
        'model = "m"\ntarget = "tpu"\n',
        "target: unknown target 'tpu': use cpu, gpu or gpu:N",
    ),
    ('model = "m"\nbuiltin = false\n', "builtin: false leaves nothing to try"),
    ('model = "m"\n[chains]\nwhy = "w"\n', "chains: expected an array of tables ([[chains]])"),
    (
        'model = "m"\n[[inputs]]\nname = "x"\ndims = ["batch", -1]\n',
        "inputs[0].dims[1]: expected a size (0 or more) or a name like 'batch', got -1",
    ),
    (
        'model = "m"\n[[inputs]]\nname = "x"\ndims = [1]\ndtype = "float8"\n',
        "inputs[0].dtype: unknown dtype 'float8'; known: float32",
    ),
    (
        'model = "m"\n[[inputs]]\nname = "x"\ndims = [1]\n[[inputs]]\nname = "x"\ndims = [2]\n',
        "inputs[1].name: 'x' is given twice",
    ),
    ('model = "m"\n[[inputs]]\nname = "x"\n', "inputs[0].dims: required key is missing"),
    ('model = "m"\n[limits\nmin_cosine = 0.9\n', "not valid TOML: "),
]


@pytest.mark.parametrize(("text", "message"), MISTAKES, ids=[m.split(":")[0] for _, m in MISTAKES])
def test_every_mistake_is_one_line_naming_the_file_and_key(tmp_path, text, message):
    error = _error(tmp_path, text)
    assert error.startswith(f"{tmp_path / 'optimize.toml'}: {message}")


def test_a_toml_syntax_error_gives_its_line(tmp_path):
    error = _error(tmp_path, 'model = "m"\n\n[limits\nmin_cosine = 0.9\n')
    assert "line 3" in error


def test_a_missing_recipe_file_is_named(tmp_path):
    with pytest.raises(UserError, match=r"nope\.toml: no recipe file here"):
        load_recipe(tmp_path / "nope.toml")


def test_the_plan_lists_the_chains_counts_shared_prefixes_once_and_estimates_time(tmp_path):
    recipe = load_recipe(EXAMPLE)
    chains = builtin_chains(Target("cpu"), ["avx2"]) + recipe.chains
    plan = describe_plan(recipe, chains, SMALL_MODEL)
    assert "quantize_static(calibration=percentile) → ort_graph(level=all)  [recipe]" in plan
    assert "entropy calibration" in plan
    # 12 distinct prefixes (onnxscript_optimize and quantize_static(percentile) are shared)
    # plus the baseline.
    assert "variants: 13 to build and measure" in plan
    # Every candidate is screened: the variants, OpenVINO on the baseline in two precisions,
    # PyTorch eager; a few are timed in full, under two thread counts and a graph level.
    assert "12 variants built, 16 candidates screened (2 OpenVINO rows, 1 PyTorch row)" in plan
    assert "about 2 of them timed in full, 3 setting(s)" in plan
    assert "time: roughly 20 s, an estimate from one sample's 0.10 ms in PyTorch" in plan


def test_the_estimate_grows_with_the_model_and_its_data_and_keeps_the_budget():
    recipe = load_recipe(EXAMPLE)
    chains = builtin_chains(Target("cpu"), ["avx2"])
    large = dataclasses.replace(SMALL_MODEL, size_mb=90.0, sample_ms=30.0, eval_samples=200)
    small_s, large_s = (_estimate_s(describe_plan(recipe, chains, p)) for p in (SMALL_MODEL, large))
    assert 10 < small_s < 40 and large_s > 5 * small_s
    budgeted = recipe.with_overrides({"search": {"budget_minutes": 1}})
    plan = describe_plan(budgeted, chains, large)
    assert "time: roughly 60 s, bounded by the budget of 1 min" in plan


def _estimate_s(plan: str) -> float:
    found = re.search(r"time: roughly ([\d.]+) (s|min)", plan)
    return float(found[1]) * (60 if found[2] == "min" else 1)


def test_the_plan_says_what_the_target_skips(tmp_path):
    recipe = Recipe(
        model=tmp_path / "m.onnx",
        target="gpu",
        chains=[Chain((QuantizeDynamic(), OrtGraphOptimize()), "int8 then fusions")],
    )
    plan = describe_plan(recipe, [Chain((), "baseline"), *recipe.chains], SMALL_MODEL)
    assert "variants: 1 to build and measure" in plan
    assert "2 skipped on gpu:0" in plan
    assert "skipped: quantize_dynamic: ONNX Runtime's CUDA provider" in plan
    assert "1 setting(s)" in plan
