"""Target parsing, provider choice, and the clear refusal of a GPU target without one."""

import onnxruntime as ort
import pytest

from hardware.detect import check_target, describe_host
from hardware.targets import Target, TargetUnavailableError, parse_target


@pytest.mark.parametrize(
    "text, expected",
    [
        ("cpu", Target("cpu")),
        ("gpu", Target("gpu", 0)),
        ("gpu:1", Target("gpu", 1)),
        ("CUDA:2", Target("gpu", 2)),
    ],
)
def test_parse_target(text, expected):
    assert parse_target(text) == expected


def test_parse_target_rejects_unknown_names():
    with pytest.raises(ValueError, match="use cpu, gpu or gpu:N"):
        parse_target("tpu")


def test_gpu_providers_keep_cpu_as_fallback_and_drop_missing_ones():
    gpu = Target("gpu", 1)
    assert gpu.providers(["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert gpu.providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert gpu.provider_options("CUDAExecutionProvider") == {"device_id": "1"}
    assert Target("cpu").providers(["CUDAExecutionProvider", "CPUExecutionProvider"]) == [
        "CPUExecutionProvider"
    ]


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="this machine has CUDA"
)
def test_gpu_target_without_cuda_says_what_to_install():
    with pytest.raises(TargetUnavailableError, match="onnxruntime-gpu"):
        check_target(Target("gpu"))


def test_describe_host_reads_the_real_machine():
    info = describe_host(include_gpus=False)
    assert info.logical_cores >= 1
    assert info.memory_gb > 0
    assert "CPUExecutionProvider" in info.ort_providers
    assert info.versions["onnxruntime"] == ort.__version__


def test_tensorrt_goes_first_with_its_engine_cache_in_the_given_folder():
    gpu = Target("gpu", 0)
    available = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    assert gpu.providers(available) == available
    options = gpu.provider_options("TensorrtExecutionProvider", "/out/trt_engines")
    assert options["trt_engine_cache_enable"] == "True"
    assert options["trt_engine_cache_path"] == "/out/trt_engines"
    assert options["trt_fp16_enable"] == "True"
    assert "trt_engine_cache_path" not in gpu.provider_options("TensorrtExecutionProvider")
