"""The load sweep of a real pick: rising closed-loop load on every split of the cores, with
batching off and on, open-loop load at the recommended setup, the recommendation written
into the Triton config and the KServe requests, and one-line refusals."""

import hashlib
import json
import threading

import numpy as np
import pytest
import yaml
from cli_runs import FAST, error_of
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as triton
from typer.testing import CliRunner

from optimize.cli import app
from optimize.serve.in_process_server import InProcessServer
from optimize.serve.load_generator import LoadPoint
from optimize.serve.load_sweep import recommend
from optimize.serve.serving_setup import ServingSetup


def test_the_sweep_recommends_a_setup_within_the_slo_and_writes_it_to_the_configs(picked):
    result = CliRunner().invoke(
        app,
        [
            "serve-bench",
            str(picked),
            "--slo-p99-ms",
            "50",
            "--price-per-hour",
            "2",
            "--seconds",
            "0.1",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "recommended (in-process):" in result.output and "per million requests" in result.output
    (sweep,) = json.loads((picked / "serving" / "load_sweep.json").read_text())["sweeps"]
    closed = [p for p in sweep["points"] if p["mode"] == "closed"]
    by_setup = {}
    for point in closed:
        by_setup.setdefault(point["setup"]["label"], []).append(point)
    # Four concurrency levels or more somewhere, each with throughput and tail latency.
    assert max(len(points) for points in by_setup.values()) >= 4
    assert all(p["throughput_per_s"] > 0 and p["p99_ms"] >= p["p50_ms"] > 0 for p in closed)
    assert {p["setup"]["batching"] for p in closed} == {False, True}
    assert [p["mode"] for p in sweep["points"]].count("open") == 3
    best = sweep["recommended"]
    assert best["p99_ms"] <= 50
    assert best["throughput_per_s"] >= 0.95 * max(
        p["throughput_per_s"] for p in closed if p["p99_ms"] <= 50
    )
    assert sweep["cost_per_million"] == pytest.approx(2 / (best["throughput_per_s"] * 3600) * 1e6)

    text = (picked / "serving" / "triton" / "cnn" / "config.pbtxt").read_text()
    config = text_format.Parse(text, triton.ModelConfig())
    setup = best["setup"]
    assert config.instance_group[0].count == setup["instances"]
    assert config.parameters["intra_op_thread_count"].string_value == str(setup["threads"])
    assert config.HasField("dynamic_batching") == setup["batching"]
    manifest = yaml.safe_load((picked / "serving" / "kserve.yaml").read_text())
    requests = manifest["spec"]["predictor"]["model"]["resources"]["requests"]
    assert requests["cpu"] == str(setup["instances"] * setup["threads"])
    listed = {
        e["path"]: e["sha256"]
        for e in json.loads((picked / "manifest.json").read_text())["artifacts"]
    }
    sweep_file = picked / "serving" / "load_sweep.json"
    assert listed["serving/load_sweep.json"] == hashlib.sha256(sweep_file.read_bytes()).hexdigest()
    assert "best.onnx" in listed and (picked / "serving" / "load_sweep.png").stat().st_size > 0


def test_an_slo_no_setup_meets_exits_1_and_keeps_the_measured_config(picked):
    result = CliRunner().invoke(
        app, ["serve-bench", str(picked), "--slo-p99-ms", "0.0001", "--seconds", "0.05"]
    )
    assert result.exit_code == 1, result.output
    assert "no setup meets p99 ≤ 0.0001 ms in-process; the lowest p99 was" in result.output
    text = (picked / "serving" / "triton" / "cnn" / "config.pbtxt").read_text()
    assert "load sweep" not in text and "count: 1," in text


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--slo-p99-ms", "-1"], "--slo-p99-ms: expected a number above 0, got -1.0"),
        (["--price-per-hour", "0"], "--price-per-hour: expected a number above 0, got 0.0"),
    ],
    ids=["slo", "price"],
)
def test_bad_sweep_flags_are_one_line(picked, args, expected):
    code, output = error_of(["serve-bench", str(picked), *args])
    assert code == 2 and len(output.splitlines()) == 1 and expected in output


def test_a_folder_without_a_pick_is_one_line(tmp_path):
    code, output = error_of(["serve-bench", str(tmp_path)])
    assert code == 2 and "pick.json is missing: run `optimize run MODEL" in output


def test_batching_joins_requests_that_arrive_within_the_delay():
    seen = []

    def run(feeds):
        seen.append(len(feeds["x"]))
        return [feeds["x"] * 2]

    sample = {"x": np.ones((1, 3), np.float32)}
    for batching, delay in ((False, 0.0), (True, 0.05)):
        seen.clear()
        with InProcessServer([run], batching, delay, max_batch=8) as server:
            requests = []

            def send(server=server, requests=requests):
                requests.append(server.submit(sample))

            senders = [threading.Thread(target=send) for _ in range(8)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()
            for request in requests:
                request.done.wait(5)
                np.testing.assert_array_equal(request.outputs[0], sample["x"] * 2)
        assert sum(seen) == 8
        assert (max(seen) > 1) == batching


def test_the_recommendation_is_the_most_throughput_within_the_slo():
    def point(setup, throughput, p99):
        return LoadPoint(setup, "closed", 4, 100, 0, throughput, p99 / 2, p99, p99)

    a, b = ServingSetup(1, 2, False), ServingSetup(2, 1, True, 100)
    points = [point(a, 1000, 1.0), point(a, 1500, 3.0), point(b, 1490, 2.0), point(b, 3000, 9.0)]
    assert recommend(points, None).throughput_per_s == 3000
    # Within the noise of the best within 5 ms, the lower p99 wins.
    assert recommend(points, 5.0) == points[2]
    assert recommend(points, 0.5) is None


def test_a_run_with_serve_sweeps_its_pick_and_reports_it(digits_files, tmp_path):
    out = tmp_path / "out"
    args = ["run", str(digits_files / "cnn.pt2"), "--out", str(out), "--no-torch-runtimes"]
    args += ["--no-openvino", "--serve", "--slo-p99-ms", "50", "--price-per-hour", "1", *FAST]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "under load: recommended (in-process):" in result.output
    report = json.loads((out / "report.json").read_text())
    (sweep,) = report["load_sweeps"]
    assert sweep["recommended"]["p99_ms"] <= 50 and sweep["cost_per_million"] > 0
    assert "load sweep of the pick" in report["stage_seconds"]
    assert "## Under load" in (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "<h2>Under load</h2>" in html and "alt='Throughput against p99'" in html
    listed = {e["path"] for e in json.loads((out / "manifest.json").read_text())["artifacts"]}
    assert {"serving/load_sweep.json", "serving/kserve.yaml", "report.html"} <= listed
    config = (out / "serving" / "triton" / "cnn" / "config.pbtxt").read_text()
    assert f"count: {sweep['recommended']['setup']['instances']}," in config

    # A run without --serve leaves no sweep of an earlier pick behind.
    result = CliRunner().invoke(app, args[: args.index("--serve")] + list(FAST))
    assert result.exit_code == 0, result.output
    assert not (out / "serving" / "load_sweep.json").exists()
    assert json.loads((out / "report.json").read_text())["load_sweeps"] == []


def test_a_level_nobody_answered_stops_the_rise_and_writes_valid_json():
    from optimize.serve.load_generator import _point
    from optimize.serve.load_sweep import LoadSweep, serving_setups
    from optimize.serve.sweep_report import render_sweep_markdown, summary_line

    setup = ServingSetup(1, 2, False)
    silent = _point(setup, "closed", 4, [], 12, 0.5)
    assert silent.requests == 0 and silent.p99_ms is None
    sweep = LoadSweep("through KServe", 2, None, None, points=[silent])
    json.dumps(sweep.to_dict(), allow_nan=False)
    assert summary_line(sweep) == "no setup answered a request through KServe"
    assert "| – | – | – |" in render_sweep_markdown([sweep])
    # PyTorch's threads are the process's: its picks get one instance of every core.
    assert {(s.instances, s.threads) for s in serving_setups(4, True, 1.0, one_instance=True)} == {
        (1, 4)
    }
