"""Built-in chains follow the CPU's int8 support and say why."""

import onnxruntime as ort

from hardware.targets import Target
from optimize.config.chains import builtin_chains, int8_scheme
from optimize.config.recipe import Recipe
from passes.fp16 import Float16
from passes.quantize_dynamic import QuantizeDynamic
from passes.quantize_static import QuantizeStatic
from passes.source_gguf import SourceGguf


def test_vnni_cpus_get_full_range_int8_and_others_reduced_range():
    assert int8_scheme(["avx2", "avx512f", "avx512_vnni"]).reduce_range is False
    assert int8_scheme(["avx2", "amx_int8"]).reduce_range is False
    avx2 = int8_scheme(["avx2", "fma"])
    assert avx2.reduce_range is True and "lacks VNNI" in avx2.why


def test_chains_carry_the_scheme_and_the_reason():
    chains = builtin_chains(Target("cpu"), ["avx2"])
    static = [c for c in chains if c.passes and isinstance(c.passes[0], QuantizeStatic)]
    assert static and all(c.passes[0].reduce_range for c in static)
    assert all("lacks VNNI" in c.why for c in static)
    assert chains[0].passes == ()
    assert all(c.why for c in chains)


def test_gpu_chains_put_half_precision_first_and_int8_behind_tensorrt():
    chains = builtin_chains(Target("gpu"), ["avx2"])
    assert chains[0].passes == ()
    assert isinstance(chains[1].passes[0], Float16)
    assert not any(isinstance(p, QuantizeDynamic) for c in chains for p in c.passes)
    static = [c.passes[0] for c in chains if c.passes and isinstance(c.passes[0], QuantizeStatic)]
    assert static
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        assert "through TensorRT" in static[0].unsupported(Target("gpu"))
    assert static[0].unsupported(Target("cpu")) is None


def test_a_language_model_given_as_a_gguf_is_also_measured_as_that_file(tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + bytes(60))
    folder_like = tmp_path / "model.bin"
    folder_like.write_bytes(bytes(64))
    first = Recipe(model=gguf).chains_to_try([], generative=True)[0]
    assert first.passes == (SourceGguf(),) and "as given" in first.why
    assert not _keeps_the_file(Recipe(model=folder_like).chains_to_try([], generative=True))
    assert not _keeps_the_file(Recipe(model=gguf).chains_to_try([], generative=False))


def _keeps_the_file(chains):
    return any(isinstance(p, SourceGguf) for c in chains for p in c.passes)
