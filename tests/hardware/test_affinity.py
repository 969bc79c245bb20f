"""Pinning keeps one logical CPU per physical core, within what the process may use."""

import os
import subprocess
import sys

import pytest

from hardware.affinity import one_per_core


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this OS")
def test_pinned_process_runs_on_one_cpu_per_core_it_was_allowed():
    allowed = sorted(os.sched_getaffinity(0))
    code = (
        "import os; from hardware.affinity import pin_measuring_process; "
        "print(pin_measuring_process(), sorted(os.sched_getaffinity(0)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    pinned = out.stdout.strip()
    expected = one_per_core(allowed)
    assert pinned == f"{expected} {expected}"
    assert set(expected) <= set(allowed) and expected
    assert sorted(os.sched_getaffinity(0)) == allowed  # the parent is left alone
