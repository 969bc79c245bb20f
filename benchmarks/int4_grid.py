"""Benchmark: can a 4-bit GGUF's own grid run at int4 speed within tolerance? SmolLM2-135M's
GGUF is Q4_1 (blocks of 32 with a float minimum), and re-quantizing it onto another 4-bit
grid costs it 16-31 % perplexity. Two ways to keep its grid, beside the builder's int4:

- ONNX Runtime's HQQ quantizer (float zero points per block of 32) on the model builder's
  float32 build, the head in int8 blocks (its GGUF embedding is Q8_0);
- OpenVINO GenAI reading the GGUF itself (its GGUF reader, the IR saved beside it).

Each in a fresh process at 2 threads through the tool's own runtimes (decode over 64
greedy tokens, time to first token at 128, perplexity on the bundled sample text), and one
MatMulNBits of a SmolLM2 MLP's shape timed alone with integer and with float zero points.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench_info import results_head
from generative import smollm2_gguf

from optimize.data.text_data import SAMPLE_TEXT, read_text, text_windows
from optimize.source.causal_lm import dequantized_folder
from optimize.store import write_text_atomic

RESULTS = Path(__file__).parent / "results" / "int4_grid.md"
BLOCK = 32
# SmolLM2-135M's MLP up projection: 576 inputs, 1536 outputs.
K, N = 576, 1536


def build(folder: Path, scratch: Path) -> dict[str, tuple[str, Path]]:
    """The contenders: name -> (runtime, artifact)."""
    builder = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(folder)]
    builds = {}
    for precision in ("fp32", "int4"):
        out = scratch / f"ortgenai-{precision}"
        if not out.exists():
            command = [*builder, "-o", str(out), "-p", precision, "-e", "cpu"]
            subprocess.run(
                [*command, "-c", str(scratch / "cache")], check=True, capture_output=True
            )
        builds[precision] = out
    hqq = scratch / "ortgenai-hqq"
    if not hqq.exists():
        _hqq(builds["fp32"], hqq)
    gguf_ir = scratch / "openvino-from-gguf"
    if not (gguf_ir / "openvino_model.xml").is_file():
        _openvino_from_gguf(gguf_ir)
    return {
        "ORT GenAI builder `-p int4` (round to nearest, int zero points)": (
            "onnxruntime_genai",
            builds["int4"],
        ),
        "ORT HQQ int4, float zero points, head int8": ("onnxruntime_genai", hqq),
        "OpenVINO GenAI reading the GGUF": ("openvino_genai", gguf_ir),
    }


def _hqq(fp32: Path, out: Path) -> None:
    """The float32 build's MatMuls quantized by ORT's HQQ (4 bits, blocks of 32, float zero
    points); the head in 8-bit blocks by ORT's default quantizer."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        HQQWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    model = onnx.load(str(fp32 / "model.onnx"))
    body = MatMulNBitsQuantizer(
        model,
        algo_config=HQQWeightOnlyQuantConfig(block_size=BLOCK, bits=4),
        nodes_to_exclude=["/lm_head/MatMul"],
    )
    body.process()
    head = MatMulNBitsQuantizer(
        body.model.model,
        algo_config=DefaultWeightOnlyQuantConfig(block_size=BLOCK, is_symmetric=True, bits=8),
    )
    head.process()
    shutil.copytree(fp32, out, ignore=shutil.ignore_patterns("model.onnx*"))
    onnx.save(head.model.model, str(out / "model.onnx"), save_as_external_data=True)


def _openvino_from_gguf(out: Path) -> None:
    """OpenVINO GenAI's GGUF reader, asked to save the IR and tokenizers it makes."""
    import openvino_genai

    out.mkdir(parents=True, exist_ok=True)
    copy = out / "model.gguf"
    shutil.copyfile(smollm2_gguf(), copy)
    openvino_genai.LLMPipeline(str(copy), "CPU", enable_save_ov_model=True)
    copy.unlink()


def matmul_us(float_zero_points: bool, accuracy_level: int) -> float:
    """Microseconds per call of one MatMulNBits (K x N, one row in), 4-bit blocks of 32."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.quantization import matmul_nbits_quantizer as nbits

    weight = numpy_helper.from_array(np.random.randn(K, N).astype(np.float32), "W")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["y"])],
        "one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, N])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if float_zero_points:
        config = nbits.HQQWeightOnlyQuantConfig(block_size=BLOCK, bits=4)
    else:
        config = nbits.DefaultWeightOnlyQuantConfig(block_size=BLOCK, is_symmetric=False)
    quantizer = nbits.MatMulNBitsQuantizer(model, algo_config=config)
    quantizer.process()
    quantized = quantizer.model.model
    for node in quantized.graph.node:
        kept = [a for a in node.attribute if a.name != "accuracy_level"]
        node.ClearField("attribute")
        node.attribute.extend([*kept, helper.make_attribute("accuracy_level", accuracy_level)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(quantized.SerializeToString(), options)
    feed = {"x": np.random.randn(1, K).astype(np.float32)}
    for _ in range(50):
        session.run(None, feed)
    started = time.perf_counter()
    for _ in range(1000):
        session.run(None, feed)
    return (time.perf_counter() - started) / 1000 * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, default=Path("build/bench/int4_grid"))
    args = parser.parse_args()
    scratch = args.scratch.resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    folder = dequantized_folder(smollm2_gguf(), scratch / "cache")
    windows = scratch / "windows.json"
    windows.write_text(json.dumps(text_windows(folder, read_text(SAMPLE_TEXT)).tolist()))
    contenders = {"transformers fp32 (the reference)": ("transformers_lm", folder)}
    contenders |= build(folder, scratch)
    measure = Path(__file__).parent / "generative.py"
    rows, reference = [], None
    for name, (runtime, artifact) in contenders.items():
        request = {"runtime": runtime, "artifact": str(artifact), "settings": {}, "threads": 2}
        request |= {"windows": str(windows), "perplexity": True}
        done = subprocess.run(
            [sys.executable, str(measure), "--one", json.dumps(request)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            rows.append(f"| {name} | failed: {done.stderr.strip().splitlines()[-1]} | | | |")
            continue
        f = json.loads(done.stdout.strip().splitlines()[-1])
        reference = reference or f["perplexity"]
        change = 100 * (f["perplexity"] / reference - 1)
        rows.append(
            f"| {name} | {f['decode_ms']:.2f} | {f['ttft_128_ms']:.0f} | "
            f"{f['perplexity']:.3f} | {change:+.1f}% |"
        )
        print(rows[-1], flush=True)
    matmuls = [
        f"| {'float' if zp else 'uint4'} | {level} | {matmul_us(zp, level):.0f} |"
        for zp in (False, True)
        for level in (0, 4)
    ]
    lines = [
        *results_head("A 4-bit GGUF's own grid at int4 speed?", "int4_grid.py"),
        "SmolLM2-135M-Instruct (Q4_1 GGUF) at 2 threads, each in a fresh process: decode over "
        "64 greedy tokens, time to first token at 128, perplexity on the bundled sample text.",
        "",
        "| contender | decode ms/token | TTFT ms at 128 | perplexity | vs fp32 |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"One MatMulNBits ({K} × {N}, one row in, 4-bit blocks of {BLOCK}, one thread):",
        "",
        "| zero points | accuracy level | µs per call |",
        "|---|---|---|",
        *matmuls,
        "",
    ]
    write_text_atomic(RESULTS, "\n".join(lines))
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
