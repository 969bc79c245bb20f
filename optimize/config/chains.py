"""Which pass chains to try for a target: literal lists, with the reason beside each."""

from __future__ import annotations

from dataclasses import dataclass

from hardware.targets import Target
from passes.base import Pass
from passes.export_gguf import ExportGguf
from passes.export_openvino_genai import ExportOpenVinoGenAi
from passes.export_ortgenai import ExportOrtGenAi
from passes.fp16 import Float16
from passes.onnxscript_optimize import OnnxscriptOptimize
from passes.ort_graph import OrtGraphOptimize
from passes.quantize_dynamic import QuantizeDynamic
from passes.quantize_int4 import QuantizeInt4
from passes.quantize_nncf import QuantizeNncf
from passes.quantize_static import QuantizeStatic
from passes.source_gguf import SourceGguf

VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
# ONNX Runtime's guidance is dynamic int8 for transformers and static for CNNs, and so it
# measured: on all-MiniLM-L6-v2 (benchmarks/results/minilm.md) static QDQ int8 ran 2.7× slower
# than float32 at a mean cosine of 0.35, its weighted-only form 2.0× slower at 0.93, where
# dynamic int8 ran faster than float32. OpenVINO's int8 of such graphs is NNCF's.
STATIC_INT8_ON_ATTENTION = (
    "on CPU, ONNX Runtime's static int8 of attention runs slower than float32 and far less "
    "accurately (all-MiniLM-L6-v2: 2.7× slower, mean cosine 0.35); dynamic int8 is its "
    "int8 for transformers, and NNCF's OpenVINO's"
)


@dataclass(frozen=True)
class Chain:
    """Passes applied in order after the model is in ONNX form, and why it is worth trying.

    `accuracy_for` names the passes of another chain this one is an accuracy alternative
    to (other calibration, fewer ops quantized): no faster than that chain's variant, it is
    tried only when that variant falls outside the limits. `not_for_attention`, when set,
    says why the chain is not tried on a transformer's graph (see has_attention)."""

    passes: tuple[Pass, ...]
    why: str
    accuracy_for: tuple[Pass, ...] = ()
    not_for_attention: str = ""


@dataclass(frozen=True)
class Int8Scheme:
    """How int8 weights are stored for this CPU, and why."""

    reduce_range: bool
    why: str


def int8_scheme(cpu_flags: list[str]) -> Int8Scheme:
    """Full-range signed int8 where the CPU has VNNI or AMX; 7-bit weights where it has
    only AVX2/AVX-512, whose u8×s8 kernels sum pairs of products in 16 bits and overflow
    with full-range weights."""
    if any(flag in cpu_flags for flag in VNNI_FLAGS):
        return Int8Scheme(
            False, "signed int8 at full range: this CPU has VNNI/AMX int8 dot products"
        )
    return Int8Scheme(
        True,
        "7-bit weights (reduce_range): this CPU lacks VNNI, and its AVX2/AVX-512 int8 kernels "
        "overflow 16-bit sums with full-range weights",
    )


def builtin_chains(
    target: Target, cpu_flags: list[str], generative: bool = False, from_gguf: bool = False
) -> list[Chain]:
    """The chains `optimize run` tries by default on `target`, for a model that generates
    text (given as a GGUF file or not) or another. Every prefix of each chain is measured
    too, so the baseline (the exported model alone) is always present."""
    if generative:
        return generative_chains(from_gguf)
    if target.is_gpu:
        return gpu_chains()
    scheme = int8_scheme(cpu_flags)
    dynamic = QuantizeDynamic(reduce_range=scheme.reduce_range)
    static = QuantizeStatic("minmax", reduce_range=scheme.reduce_range)
    return [
        Chain((), "the exported model as it is: the baseline every variant is compared with"),
        # ONNX Runtime's own graph levels are session settings, swept when a contender is
        # timed in full (see hardware.runtimes.onnxruntime): a file saved at a level runs as
        # the export does in a session at that level, so it is not screened on its own.
        Chain(
            (OnnxscriptOptimize(),),
            "onnxscript's constant folding and pattern fusions, which ONNX Runtime's session "
            "levels do not all make",
        ),
        Chain(
            (dynamic,),
            "int8 weights of MatMul-like ops, activations quantized per run, no calibration; "
            + scheme.why,
        ),
        Chain(
            (QuantizeDynamic(per_channel=True, reduce_range=scheme.reduce_range),),
            "dynamic int8 with one scale per output channel: keeps encoders whose weight "
            "ranges vary across channels (MiniLM) within tolerance; " + scheme.why,
            accuracy_for=(dynamic,),
        ),
        Chain(
            (static,),
            "QDQ int8, per-channel weights, min-max calibration; " + scheme.why,
            not_for_attention=STATIC_INT8_ON_ATTENTION,
        ),
        Chain(
            (QuantizeStatic("percentile", reduce_range=scheme.reduce_range),),
            "QDQ int8, percentile calibration, which clips outliers that widen min-max "
            "ranges; " + scheme.why,
            accuracy_for=(static,),
        ),
        Chain(
            (QuantizeStatic("minmax", reduce_range=scheme.reduce_range, weighted_only=True),),
            "QDQ int8 of the ops with weights only (Conv, MatMul, Gemm …), the rest in float: "
            "survives tensors of extreme range, such as attention-mask fills; " + scheme.why,
            accuracy_for=(static,),
        ),
        Chain(
            (QuantizeNncf(),),
            "NNCF int8 (symmetric, with fast bias correction and a transformer scheme): the "
            "QDQ model OpenVINO runs as int8 where the CPU has VNNI or AMX",
        ),
        Chain(
            (QuantizeInt4(),),
            "int4 weight-only MatMul (MatMulNBits): smallest weights for transformer-like models",
        ),
        Chain(
            (Float16(),),
            "half-precision weights and arithmetic: fast where the target has fp16 units, "
            "measured everywhere",
        ),
    ]


def gpu_chains() -> list[Chain]:
    """The GPU's chains, half precision first: tensor cores run fp16 at several times the
    fp32 rate, and ONNX Runtime's CUDA provider has no integer MatMul kernels, so int8 runs
    only where TensorRT takes QDQ models."""
    return [
        Chain((), "the exported model as it is: the baseline every variant is compared with"),
        Chain(
            (Float16(),),
            "half precision with float32 inputs and outputs, overflowing ops kept in fp32: "
            "the GPU's tensor cores",
        ),
        Chain(
            (OnnxscriptOptimize(), Float16()),
            "onnxscript's folding and fusions, then half precision",
        ),
        Chain(
            (OrtGraphOptimize("extended"),),
            "ONNX Runtime's operator fusions (GELU, LayerNorm, attention) in fp32",
        ),
        Chain(
            (QuantizeStatic("minmax", reduce_range=False),),
            "QDQ int8 for TensorRT's explicit quantization (skipped without TensorRT)",
        ),
        Chain(
            (QuantizeStatic("minmax", reduce_range=False, weighted_only=True),),
            "QDQ int8 of the ops with weights only, for TensorRT (skipped without it)",
        ),
        Chain(
            (QuantizeInt4(),),
            "int4 weight-only MatMul (MatMulNBits has CUDA kernels): memory-bound "
            "transformer layers",
        ),
    ]


def generative_chains(from_gguf: bool = False) -> list[Chain]:
    """A causal LM's chains: each runtime's own exporter at int8 and int4 weights. int4 is
    not always faster on a CPU, and costs small models the most perplexity: measured, not
    assumed. Where int4 loses too much, an alternative keeps its most sensitive layers in
    int8. A model given as a GGUF file is also measured as that file, unchanged."""
    ort_int4 = ExportOrtGenAi("int4")
    ov_int4 = ExportOpenVinoGenAi("int4", group_size=64)
    as_given = [
        Chain(
            (SourceGguf(),),
            "the GGUF file as given, in llama.cpp: what serving it unchanged gives, the "
            "candidate every re-quantization has to beat",
        )
    ]
    return [
        *(as_given if from_gguf else []),
        Chain(
            (),
            "the model as transformers runs it (float32, and bf16 autocast where the CPU "
            "has it): the reference every candidate's perplexity is compared with",
        ),
        Chain(
            (ExportOrtGenAi("int8"),),
            "ONNX Runtime GenAI's builder, int8 weights in blocks of 32 with int8 compute "
            "(MatMulNBits accuracy level 4, integer dot products where the CPU has VNNI)",
        ),
        Chain(
            (ort_int4,),
            "ONNX Runtime GenAI's builder at its int4 default (round to nearest, "
            "blocks of 32): the fewest bytes per token read",
        ),
        Chain(
            (ExportOrtGenAi("int4", algorithm="k_quant_mixed"),),
            "the builder's k-quant int4 with llama.cpp's mixed layers in int8 (the head, the "
            "first and last eighth of the layers, every third layer's attention inputs and MLP "
            "down projection): more bytes per token, for when plain int4 loses too much",
            accuracy_for=(ort_int4,),
        ),
        Chain(
            (ExportOpenVinoGenAi("int8"),),
            "optimum-intel's export with NNCF int8 weights (asymmetric, per channel), run by "
            "OpenVINO GenAI with its stateful KV cache",
        ),
        Chain(
            (ov_int4,),
            "NNCF int4 weights in groups of 64 (optimum's default 128 does not divide the "
            "widths of many small models), embeddings and head in int8",
        ),
        Chain(
            (
                ExportOpenVinoGenAi(
                    "int4", group_size=64, ratio=0.8, awq=True, scale_estimation=True
                ),
            ),
            "NNCF's data-aware int4 on the run's own text (AWQ and scale estimation), the "
            "fifth of the layers it finds most sensitive kept in int8: for when plain int4 "
            "loses too much",
            accuracy_for=(ov_int4,),
        ),
        Chain(
            (ExportGguf("q8_0"),),
            "llama.cpp's converter straight to q8_0 (where llama-cpp-python is installed)",
        ),
        Chain(
            (ExportGguf("q4_k_m"),),
            "llama.cpp's q4_k_m k-quant, quantized by llama.cpp itself from an f16 conversion",
        ),
    ]
