"""A crash, a hang or an error in the child process fails that unit alone, in a fresh
process and in the warm worker alike; the warm worker keeps serving after it."""

import os
import sys
import time

import pytest

from optimize.errors import UserError
from optimize.isolation import (
    IsolatedRunError,
    close_warm_worker,
    prepare_warm_worker,
    run_isolated,
    run_warm,
)

RUNNERS = pytest.mark.parametrize("run", [run_isolated, run_warm], ids=["fresh", "warm"])


def _square(x):
    return x * x


def _abort(_):
    os.abort()


def _hang(_):
    time.sleep(60)


def _raise(_):
    raise ValueError("bad model")


@RUNNERS
def test_result_comes_back(run):
    assert run(_square, 7, timeout_s=60) == 49


@RUNNERS
def test_native_crash_is_reported_with_its_signal(run):
    with pytest.raises(IsolatedRunError, match="crashed \\(SIGABRT\\)"):
        run(_abort, None, timeout_s=60)


@RUNNERS
def test_hang_is_killed_at_the_limit(run):
    start = time.monotonic()
    with pytest.raises(IsolatedRunError, match="timed out"):
        run(_hang, None, timeout_s=1)
    assert time.monotonic() - start < 20


@RUNNERS
def test_exception_message_is_kept(run):
    with pytest.raises(IsolatedRunError, match="ValueError: bad model"):
        run(_raise, None, timeout_s=60)


def _refuse(_):
    raise UserError("calibration data 'x.npz': no such file")


@RUNNERS
def test_the_childs_traceback_comes_back_for_debugging(run):
    with pytest.raises(IsolatedRunError) as caught:
        run(_raise, None, timeout_s=60)
    assert 'raise ValueError("bad model")' in caught.value.child_traceback
    assert not caught.value.user_error


@RUNNERS
def test_a_user_error_in_the_child_stays_one(run):
    with pytest.raises(IsolatedRunError) as caught:
        run(_refuse, None, timeout_s=60)
    assert caught.value.user_error
    assert str(caught.value) == "calibration data 'x.npz': no such file"


def _pid(_):
    return os.getpid()


def test_the_warm_worker_serves_many_units_and_is_replaced_after_a_crash():
    first = run_warm(_pid, None, timeout_s=60)
    assert run_warm(_pid, None, timeout_s=60) == first != os.getpid()
    with pytest.raises(IsolatedRunError, match="ValueError"):
        run_warm(_raise, None, timeout_s=60)
    assert run_warm(_pid, None, timeout_s=60) == first  # an exception is the unit's alone
    with pytest.raises(IsolatedRunError, match="crashed"):
        run_warm(_abort, None, timeout_s=60)
    replaced = run_warm(_pid, None, timeout_s=60)
    assert replaced != first
    close_warm_worker()
    with pytest.raises(ProcessLookupError):
        os.kill(replaced, 0)


def _imported(name):
    return name in sys.modules


def test_the_warm_worker_imports_what_it_is_asked_ahead_and_skips_what_is_missing():
    close_warm_worker()
    prepare_warm_worker(("colorsys", "no_such_package_anywhere"))
    assert run_warm(_imported, "colorsys", timeout_s=60)
    assert not run_warm(_imported, "no_such_package_anywhere", timeout_s=60)
    close_warm_worker()
    assert not run_warm(_imported, "colorsys", timeout_s=60)  # a new worker, not prepared
    close_warm_worker()


@pytest.mark.parametrize("form", ["onnx", "pt2"])
def test_a_script_without_a_main_guard_fails_at_once_saying_why(
    form, digits_cnn, digits_cnn_onnx, tmp_path
):
    import subprocess
    import sys
    import time
    from pathlib import Path

    import torch

    model = digits_cnn_onnx
    if form == "pt2":  # exported here, so the first child starts only to build a variant
        model = tmp_path / "cnn.pt2"
        torch.export.save(torch.export.export(digits_cnn, (torch.zeros(2, 1, 8, 8),)), model)
    root = Path(__file__).resolve().parents[2]
    script = tmp_path / "optimize_it.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(root)!r})\n"
        "from optimize import Recipe, run\n"
        f"run(Recipe(model={str(model)!r}, out={str(tmp_path / 'out')!r}))\n"
    )
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert time.monotonic() - start < 120
    assert done.returncode != 0
    assert 'put the call under `if __name__ == "__main__":`' in done.stderr.splitlines()[-1]
    assert not (tmp_path / "out" / "report.json").exists()


def _exit_with_one(_):
    os._exit(1)


def test_a_unit_that_exits_after_starting_fails_alone_not_as_a_missing_main_guard():
    with pytest.raises(IsolatedRunError, match="exited with code 1"):
        run_isolated(_exit_with_one, None, 30)
    with pytest.raises(IsolatedRunError, match="exited with code 1"):
        run_warm(_exit_with_one, None, 30)
    assert run_warm(abs, -3, 30) == 3
