"""A run killed with SIGKILL at any point leaves no process behind and no finished-looking
report, and the next run into the same folder completes, reusing the work that finished."""

import json
import re
import subprocess
import sys
import time

import psutil
import pytest

# Where each run is killed, by the progress line that says what it is doing: building
# while screening goes on, screening in PyTorch (the warm worker), timing in full (a
# fresh child process).
KILL_POINTS = [
    r"building export → .*",
    r"screening torch eager",
    r"timing .* in full",
]
# The kernel kills a child with its parent at once; a child that outlived it would end
# only when its unit did, which takes longer than this.
ORPHAN_GRACE_S = 3


def _command(model, out):
    return [
        sys.executable,
        "-m",
        "optimize",
        "run",
        str(model),
        "--out",
        str(out),
        # Screening stays brief (0.1 s); a full timing of two seconds a loop outlasts the
        # second the kill waits, where one of 0.1 s can end the run within it.
        "--measure-seconds",
        "2",
        "--no-openvino",
    ]


def _run_until(command, pattern: str) -> list[psutil.Process]:
    """Start `command`, SIGKILL it at its first progress line matching `pattern` (a
    second after, so the work it names is under way), and return the processes it had
    started."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    deadline = time.monotonic() + 300
    try:
        for line in process.stdout:
            assert time.monotonic() < deadline, f"no line matched {pattern!r} in time"
            if re.search(rf"\] {pattern}$", line.strip()):
                time.sleep(1.0)
                break
        else:
            pytest.fail(f"the run ended before it could be killed at {pattern!r}")
        children = psutil.Process(process.pid).children(recursive=True)
        process.kill()
        process.wait()
        return children
    finally:
        process.kill()
        process.stdout.close()


def _finished(out) -> dict:
    figures = [*out.glob("variants/*/screening.json"), *out.glob("variants/*/measurements.json")]
    return {path: path.stat().st_mtime_ns for path in [*figures, *out.glob("cache/rows/*/*.json")]}


def test_a_run_killed_at_each_stage_leaves_no_child_and_resumes(digits_files, tmp_path):
    out = tmp_path / "out"
    command = _command(digits_files / "cnn.pt2", out)
    finished = {}
    for pattern in KILL_POINTS:
        children = _run_until(command, pattern)
        assert children, f"no child process was running at {pattern!r}"
        _, alive = psutil.wait_procs(children, timeout=ORPHAN_GRACE_S)
        assert not alive, f"killed at {pattern!r}, processes {[p.pid for p in alive]} outlived it"
        assert not (out / "report.json").exists() and not (out / "best.onnx").exists()
        now = _finished(out)
        # What an earlier run finished is read back, never taken again.
        assert all(now[path] == mtime for path, mtime in finished.items())
        finished = now
    # A resumed run may finish all it had left before the next kill point; killed at the
    # first, a run has always finished some screening.
    assert finished, "no work finished before any kill"

    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert all(path.stat().st_mtime_ns == mtime for path, mtime in finished.items())
    by_id = {v["id"]: v for v in report["variants"]}
    screened = [
        p.parent.name for p in finished if p.name == "screening.json" and "variants" in p.parts
    ]
    assert screened and all(by_id[variant]["cached"] for variant in screened)
    assert not list(out.rglob("*.partial")) and not list(out.rglob(".*.tmp"))
