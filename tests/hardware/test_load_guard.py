"""The load guard on a real machine: a CPU hog started here is seen while a figure is
timed, the figure is re-taken and then flagged with the share the hog used."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from hardware.load_guard import BUSY_SHARE, TAKES, LoadWatch, on_a_quiet_machine
from hardware.model_files import model_size_mb
from hardware.profile import TimingBudget, measure_model
from hardware.runtimes.onnxruntime import OnnxRuntime
from hardware.session import SessionSettings
from hardware.targets import Target

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")

HOG = "import time\nend = time.time() + 60\nwhile time.time() < end:\n    pass\n"


@pytest.fixture
def hog():
    """A process that keeps one core busy until the test ends: another process's, not
    this one's child (the guard counts its own children as its own), so started by a
    shell that exits at once."""
    shell = f"{sys.executable} -c '{HOG}' > /dev/null 2>&1 & echo $!"
    pid = int(subprocess.run(["sh", "-c", shell], capture_output=True, text=True).stdout)
    time.sleep(0.3)  # until it spins
    yield pid
    os.kill(pid, signal.SIGKILL)


def _spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_own_work_and_own_children_are_not_counted_as_others():
    with LoadWatch() as idle:
        time.sleep(0.5)
    child = subprocess.Popen([sys.executable, "-c", HOG])
    try:
        with LoadWatch() as busy:
            _spin(0.5)
    finally:
        child.kill()
        child.wait()
    # Whatever else the machine does, this process and its child add nothing to it.
    assert busy.share is not None and busy.share < idle.share + BUSY_SHARE


def test_a_figure_taken_beside_a_hog_is_retaken_then_flagged(hog, digits_cnn_onnx):
    _, share, retakes = on_a_quiet_machine(lambda: None)
    assert share is None and retakes == 0  # too short to tell: taken once
    _, share, retakes = on_a_quiet_machine(lambda: _spin(0.4))
    # One of two cores (or of however many this machine has) is the hog's.
    assert share is not None and share > BUSY_SHARE and retakes == TAKES - 1
    feeds = {"x": np.zeros((1, 1, 8, 8), np.float32)}
    # Never "stable" early: every take lasts long enough to tell who used the cores.
    budget = TimingBudget(
        warmup_runs=1, warmup_s=0.0, measure_s=0.4, stable_error=0.0, max_runs=10**7
    )
    size = model_size_mb(digits_cnn_onnx)
    settings = SessionSettings(intra_op_threads=1)
    measured = measure_model(
        OnnxRuntime(), digits_cnn_onnx, Target("cpu"), feeds, feeds, settings, budget, size
    )
    assert measured.others_cpu_share > BUSY_SHARE and measured.retakes == TAKES - 1
    assert measured.to_dict()["others_cpu_share"] == measured.others_cpu_share
