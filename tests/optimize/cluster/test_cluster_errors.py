"""--cluster from the command line: one clear line for each way it cannot start, the
resources a node publishes, and a run on a cluster started on this machine for it."""

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from hardware.detect import describe_host
from optimize.cli import app
from optimize.cluster.hardware_class import MEASURE_SLOT, class_id, class_resource

QUICK = ["--measure-seconds", "0.02", "--no-torch-runtimes", "--no-openvino"]


def _one_line_refusal(args) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    return lines[0]


def test_without_ray_the_extra_is_named(digits_cnn_onnx, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    args = ["run", str(digits_cnn_onnx), "--out", str(tmp_path), "--cluster", "auto"]
    assert "pip install 'optimize[cluster]'" in _one_line_refusal(args)


def test_an_address_nothing_answers_at_is_refused_at_once(digits_cnn_onnx, tmp_path):
    args = ["run", str(digits_cnn_onnx), "--out", str(tmp_path), "--cluster", "127.0.0.1:9"]
    assert "no Ray cluster answers at 127.0.0.1:9" in _one_line_refusal(args)


def test_auto_needs_ray_address(digits_cnn_onnx, tmp_path, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    args = ["run", str(digits_cnn_onnx), "--out", str(tmp_path), "--cluster", "auto"]
    assert "RAY_ADDRESS, which is not set" in _one_line_refusal(args)


def test_what_a_cluster_run_cannot_do_is_refused(digits_cnn_onnx, tmp_path):
    base = ["run", str(digits_cnn_onnx), "--out", str(tmp_path)]
    serve = _one_line_refusal([*base, "--cluster", "auto", "--serve"])
    assert "serve-bench" in serve and "node of the hardware class" in serve
    alone = _one_line_refusal([*base, "--hardware-class", "abc"])
    assert "give its address too" in alone


def test_a_node_publishes_its_slot_and_class():
    result = CliRunner().invoke(app, ["node-resources"])
    assert result.exit_code == 0, result.output
    resources = json.loads(result.output)
    mine = class_resource(class_id(describe_host(include_gpus=False)))
    assert resources[MEASURE_SLOT] == 1 and resources[mine] > 1


def test_a_local_cluster_measures_on_this_machines_class(digits_cnn_onnx, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "optimize", "run", str(digits_cnn_onnx), "--out", str(out)]
    # Ray advertises the machine's outward address unless told it is not a cluster host.
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    done = subprocess.run(
        [*command, *QUICK, "--cluster", "local", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["cluster"]["hardware_class"] == class_id(describe_host(include_gpus=False))
    assert report["pick"] is not None
    assert any(u["unit"].startswith("timing") for u in report["cluster"]["units"])
