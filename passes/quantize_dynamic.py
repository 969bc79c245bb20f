"""Dynamic int8 quantization: int8 weights, activations quantized at run time."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from hardware.targets import Target
from passes.base import Outcome, Pass, PassContext, PassError, PassSkipped
from passes.onnx_files import needs_external_data, op_histogram
from passes.quant_prep import preprocess_for_quantization

# Conv is left out: ONNX Runtime's ConvInteger kernels are usually slower than float Conv
# on CPU, so dynamic quantization pays off on MatMul-heavy models only.
DEFAULT_OP_TYPES = ("MatMul", "Attention", "LSTM", "Gather", "EmbedLayerNormalization")


@dataclass(frozen=True)
class QuantizeDynamic(Pass):
    """Quantize weights of `op_types` to int8 with ONNX Runtime's dynamic quantizer."""

    name = "quantize_dynamic"
    lowers_precision = True
    libraries = ("onnx", "onnxruntime")
    per_channel: bool = False
    # 7-bit weights: on x86 CPUs without VNNI, ONNX Runtime's u8s8 MatMulInteger kernels use
    # VPMADDUBSW, whose int16 pair sums saturate with full-range 8-bit weights. On the tiny
    # transformer on an AVX2 CPU, cosine to fp32 was 0.990 with 8-bit weights, 0.9999 with 7.
    reduce_range: bool = True
    op_types: tuple[str, ...] = DEFAULT_OP_TYPES
    nodes_to_exclude: tuple[str, ...] = ()

    @property
    def repair_op_types(self) -> tuple[str, ...]:
        """Op types whose nodes the accuracy fallback may keep in float: a Gemm is
        quantized as the MatMul it is written as."""
        return (*self.op_types, "Gemm") if "MatMul" in self.op_types else self.op_types

    @property
    def quantizes_weights_only(self) -> bool:
        """Only nodes with a constant weight are quantized (a MatMul of two activations,
        a Gather from a shape, stay float): the fallback need not probe the others."""
        return True

    def unsupported(self, target: Target) -> str | None:
        if target.is_gpu:
            return "ONNX Runtime's CUDA provider has no integer MatMul kernels; on GPU int8 runs through TensorRT"
        return None

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantized = self.repair_op_types
        if not any(op in op_histogram(src) for op in quantized):
            raise PassSkipped(f"nothing to quantize: the model has no {', '.join(quantized)} node")
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / "model.onnx"
        with tempfile.TemporaryDirectory() as scratch:
            prepared = preprocess_for_quantization(src, Path(scratch))
            try:
                quantize_dynamic(
                    prepared,
                    out,
                    op_types_to_quantize=list(self.op_types),
                    per_channel=self.per_channel,
                    reduce_range=self.reduce_range,
                    weight_type=QuantType.QInt8,
                    # The quantizer writes a Gemm as a MatMul named after it, then quantizes
                    # that: keeping a Gemm in float means keeping its MatMul.
                    nodes_to_exclude=[
                        name for node in self.nodes_to_exclude for name in (node, f"{node}_MatMul")
                    ],
                    use_external_data_format=needs_external_data(src),
                )
            except Exception as exc:  # onnxruntime's quantizer raises untyped errors
                raise PassError(f"dynamic quantization failed: {exc}") from exc
        after = op_histogram(out)
        integer_ops = sum(n for op, n in after.items() if "Integer" in op or "Quant" in op)
        return Outcome(out, changed=True, note=f"{integer_ops} integer/quantize nodes")
