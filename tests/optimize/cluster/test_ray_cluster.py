"""A run on a Ray cluster of several nodes on this machine, each node given a hardware
class of its own: measurements run only on nodes of the run's class, nothing runs twice, a
re-run (on the cluster or here) reuses everything, and a lost node costs only its unit."""

import json
import os
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import ray
from figures import QUICK_MEASURE
from ray import cluster_utils

from optimize.api import run
from optimize.cluster.hardware_class import MEASURE_SLOT, class_resource
from optimize.cluster.ray_executor import RayExecutor
from optimize.config.chains import Chain
from optimize.config.recipe import Recipe
from optimize.errors import UserError
from optimize.execution import Unit
from optimize.isolation import IsolatedRunError
from passes.ort_graph import OrtGraphOptimize
from passes.quantize_dynamic import QuantizeDynamic

LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
MEASURED = ("screening", "timing", "head to head", "estimating", "profiling")


def _node(cluster, hardware_class):
    resources = {MEASURE_SLOT: 1, class_resource(hardware_class): 1000}
    return cluster.add_node(num_cpus=1, resources=resources, node_ip_address="127.0.0.1")


@pytest.fixture(scope="module")
def cluster():
    """A head with no CPU of its own, two nodes of class 'fast' and one of class 'other',
    every process on 127.0.0.1; the test process is its driver."""
    # Ray advertises the machine's outward address unless told it is not a cluster host.
    before = os.environ.get(LOOPBACK_ONLY), ray._private.ray_constants.ENABLE_RAY_CLUSTER
    os.environ[LOOPBACK_ONLY] = "0"
    ray._private.ray_constants.ENABLE_RAY_CLUSTER = False
    local = cluster_utils.Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "include_dashboard": False, "node_ip_address": "127.0.0.1"},
    )
    fast = [_node(local, "fast"), _node(local, "fast")]
    _node(local, "other")
    local.wait_for_nodes()
    ray.init(address=local.address, log_to_driver=False)
    local.fast_ids = {n.node_id[:8] for n in fast}
    try:
        yield local
    finally:
        ray.shutdown()
        local.shutdown()
        ray._private.ray_constants.ENABLE_RAY_CLUSTER = before[1]
        if before[0] is None:
            del os.environ[LOOPBACK_ONLY]
        else:
            os.environ[LOOPBACK_ONLY] = before[0]


def _recipe(model, out, eval_data, **cluster):
    return Recipe(
        model=model,
        out=out,
        data={"eval": eval_data},
        chains=[
            Chain((OrtGraphOptimize("all"),), "fused and laid out"),
            Chain((QuantizeDynamic(),), "int8"),
        ],
        builtin=False,
        measure={**QUICK_MEASURE, "time_in_full": "all"},
        cluster=cluster,
    )


def _units(results):
    return Counter(u["unit"] for u in results.cluster["units"])


def test_a_run_measures_only_on_its_class_and_reuses_everything(
    cluster, digits, digits_cnn_onnx, tmp_path, monkeypatch
):
    np.savez(tmp_path / "eval.npz", x=digits.test_x[:200], labels=digits.test_y[:200])
    on_cluster = {"address": cluster.address, "hardware_class": "fast"}
    # A path relative to here, as typed: the nodes run from folders of their own.
    monkeypatch.chdir(digits_cnn_onnx.parent)
    model = Path(digits_cnn_onnx.name)
    recipe = _recipe(model, tmp_path / "out", tmp_path / "eval.npz", **on_cluster)

    results = run(recipe)

    assert results.pick is not None
    measured = [v for v in results.variants if v.measured]
    assert len(measured) == 3 and all(v.timing == "full" for v in measured)
    assert {v.measurements.node.rsplit("/", 1)[1] for v in measured} <= cluster.fast_ids
    units = _units(results)
    assert units and max(units.values()) == 1, units  # nothing ran twice
    measuring = [u for u in results.cluster["units"] if u["unit"].startswith(MEASURED)]
    assert {u["node"].rsplit("/", 1)[1] for u in measuring} <= cluster.fast_ids
    assert sum(u.startswith("building") for u in units) == 2
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["cluster"]["hardware_class"] == "fast"
    assert report["cluster"]["units"] == results.cluster["units"]
    where = (tmp_path / "out" / "report.md").read_text().split("## Where it ran")[1]
    assert "every measurement on hardware class fast" in where
    assert all(node in where for node in {u["node"] for u in results.cluster["units"]})

    again = run(recipe)
    assert not [u for u in _units(again) if u.startswith(("building", "screening", "timing"))]
    # The order may follow the gains the first run kept; the candidates are the same.
    assert sorted(v.id for v in again.variants) == sorted(v.id for v in results.variants)
    assert again.pick.id == results.pick.id

    here = run(_recipe(model, tmp_path / "out", tmp_path / "eval.npz"))
    assert here.cluster is None and here.pick.id == results.pick.id
    assert all(v.measurements_cached for v in here.variants if v.measured)
    local = json.loads((tmp_path / "out" / "report.json").read_text())
    assert local.keys() == report.keys()
    assert "## Where it ran" not in (tmp_path / "out" / "report.md").read_text()


def test_a_class_the_cluster_lacks_is_named(cluster, digits_cnn_onnx, tmp_path):
    on_cluster = {"address": cluster.address, "hardware_class": "absent"}
    recipe = _recipe(digits_cnn_onnx, tmp_path / "out", None, **on_cluster)
    with pytest.raises(UserError, match="no node of hardware class absent; it has .*fast"):
        run(recipe)


def test_a_lost_node_costs_only_its_unit(cluster, tmp_path):
    doomed = _node(cluster, "fragile")
    cluster.wait_for_nodes()
    executor = RayExecutor(cluster.address, "fragile", [tmp_path], connected_here=False)
    # Each attempt leaves a file, then works for a while: the unit's first attempt is
    # known to be under way on the only node of the class when that node is lost.
    attempts = tmp_path / "attempts"
    attempts.mkdir()
    unit = Unit(subprocess.run, ["sh", "-c", f"mktemp -p {attempts} && sleep 5"], 60, "timing a")
    placed = []
    waiting = threading.Thread(target=lambda: placed.append(executor.measure(unit)))
    waiting.start()
    deadline = time.monotonic() + 120
    while not any(attempts.iterdir()):
        assert time.monotonic() < deadline, "the unit never started"
        time.sleep(0.2)
    spare = _node(cluster, "fragile")
    cluster.remove_node(doomed)
    waiting.join(timeout=180)

    # The unit ran again, on the other node of its class, and succeeded there.
    assert len(list(attempts.iterdir())) == 2
    assert placed[0].node.rsplit("/", 1)[1] == spare.node_id[:8]
    assert placed[0].result.returncode == 0

    cluster.remove_node(spare)
    with pytest.raises(IsolatedRunError, match="no live node of the cluster has .*class fragile"):
        executor.measure(unit)
