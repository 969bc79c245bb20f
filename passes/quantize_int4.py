"""Int4 weight-only quantization: constant MatMul weights to blockwise int4 (MatMulNBits)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from hardware.errors import UserError
from passes.base import Outcome, Pass, PassContext, PassError, PassSkipped
from passes.onnx_files import needs_external_data, op_histogram, save_proto_model

ACCURACY_LEVELS = range(5)


@dataclass(frozen=True)
class QuantizeInt4(Pass):
    """Quantize the constant B weight of each MatMul to int4 in blocks of `block_size` rows,
    with ONNX Runtime's MatMulNBits quantizer; activations stay float.

    `symmetric` drops the per-block zero points (smaller file, slightly coarser).
    `accuracy_level` is MatMulNBits' minimum compute precision (0 unset, 1 fp32, 2 fp16,
    3 bf16, 4 int8): 4 lets the CPU kernel quantize activations to int8 per block and
    use integer dot products, usually its fastest path. MatMulNBits has CPU and CUDA
    kernels, so the pass serves both targets.

    MatMulNBits replaces MatMul only, so a Gemm on a constant weight (the dynamo exporter
    writes Linear on 2-D inputs so) is written as MatMul first, by ONNX Runtime's rewrite
    that its dynamic int8 quantizer applies too: the same Linear is quantized whatever the
    shape of its input.
    """

    name = "quantize_int4"
    lowers_precision = True
    libraries = ("onnx", "onnxruntime")
    block_size: int = 32
    symmetric: bool = True
    accuracy_level: int = 4

    def __post_init__(self) -> None:
        # MatMulNBits' kernels require a power-of-two block of at least 16 rows.
        if self.block_size < 16 or self.block_size & (self.block_size - 1):
            raise UserError(f"quantize_int4 block_size {self.block_size}: use a power of two >= 16")
        if self.accuracy_level not in ACCURACY_LEVELS:
            raise UserError(
                f"quantize_int4 accuracy_level {self.accuracy_level}: use 0, 1, 2, 3 or 4"
            )

    def apply(self, src: Path, out_dir: Path, ctx: PassContext) -> Outcome:
        import onnx
        from onnxruntime.quantization.onnx_model import ONNXModel

        model = onnx.load(str(src))
        # ONNX Runtime's own rewrite, the one its dynamic int8 quantizer applies.
        ONNXModel(model).replace_gemm_with_matmul()
        eligible, too_small = _matmul_weights(model.graph, self.block_size)
        if not eligible:
            raise PassSkipped(
                f"no MatMul or Gemm with a constant weight of at least {self.block_size} "
                "rows to quantize to int4"
            )
        nbits = _import_nbits_quantizer()
        out = out_dir / "model.onnx"
        try:
            quantizer = nbits.MatMulNBitsQuantizer(
                model,
                nodes_to_exclude=too_small,
                algo_config=nbits.DefaultWeightOnlyQuantConfig(
                    block_size=self.block_size,
                    is_symmetric=self.symmetric,
                    accuracy_level=self.accuracy_level,
                    bits=4,
                ),
            )
            quantizer.process()
            save_proto_model(quantizer.model.model, out, external=needs_external_data(src))
        except Exception as exc:  # onnxruntime's quantizer raises untyped errors
            raise PassError(f"int4 quantization failed: {exc}") from exc
        after = op_histogram(out)
        quantized = after.get("com.microsoft.MatMulNBits", 0)
        note = f"{quantized} MatMul -> MatMulNBits (int4, block {self.block_size})"
        if after.get("Gemm"):
            note += f"; {after['Gemm']} Gemm left float"
        return Outcome(out, changed=quantized > 0, note=note)


def _matmul_weights(graph, block_size: int) -> tuple[list[str], list[str]]:
    """Names of the MatMul nodes of `graph` whose B is a float initializer with at least
    `block_size` rows (K), and of those whose constant B is too small."""
    import onnx

    floats = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)
    weights = {t.name: list(t.dims) for t in graph.initializer if t.data_type in floats}
    eligible, too_small = [], []
    for node in graph.node:
        if node.op_type != "MatMul" or node.domain not in ("", "ai.onnx"):
            continue
        dims = weights.get(node.input[1])
        if dims is None:
            continue
        # The quantizer takes 2-D weights, or N-D ones whose leading dims are all 1.
        fits = len(dims) >= 2 and all(d == 1 for d in dims[:-2]) and dims[-2] >= block_size
        (eligible if fits else too_small).append(node.name)
    return eligible, too_small


def _import_nbits_quantizer() -> ModuleType:
    """ONNX Runtime's MatMulNBits quantizer module. Importing it calls
    logging.basicConfig(level=INFO), which would print every library's INFO lines from
    then on, so the root logger is put back as it was."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    from onnxruntime.quantization import matmul_nbits_quantizer

    root.handlers[:] = handlers
    root.setLevel(level)
    return matmul_nbits_quantizer
