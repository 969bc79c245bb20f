"""A crash, a hang or an error in the child process fails that unit alone."""

import os
import time

import pytest

from optimize.errors import UserError
from optimize.isolation import IsolatedRunError, run_isolated


def _square(x):
    return x * x


def _abort(_):
    os.abort()


def _hang(_):
    time.sleep(60)


def _raise(_):
    raise ValueError("bad model")


def test_result_comes_back():
    assert run_isolated(_square, 7, timeout_s=60) == 49


def test_native_crash_is_reported_with_its_signal():
    with pytest.raises(IsolatedRunError, match="crashed \\(SIGABRT\\)"):
        run_isolated(_abort, None, timeout_s=60)


def test_hang_is_killed_at_the_limit():
    start = time.monotonic()
    with pytest.raises(IsolatedRunError, match="timed out"):
        run_isolated(_hang, None, timeout_s=1)
    assert time.monotonic() - start < 20


def test_exception_message_is_kept():
    with pytest.raises(IsolatedRunError, match="ValueError: bad model"):
        run_isolated(_raise, None, timeout_s=60)


def _refuse(_):
    raise UserError("calibration data 'x.npz': no such file")


def test_the_childs_traceback_comes_back_for_debugging():
    with pytest.raises(IsolatedRunError) as caught:
        run_isolated(_raise, None, timeout_s=60)
    assert 'raise ValueError("bad model")' in caught.value.child_traceback
    assert not caught.value.user_error


def test_a_user_error_in_the_child_stays_one():
    with pytest.raises(IsolatedRunError) as caught:
        run_isolated(_refuse, None, timeout_s=60)
    assert caught.value.user_error
    assert str(caught.value) == "calibration data 'x.npz': no such file"
