"""The sweep through a real server: KServe's model server started on 127.0.0.1 by the tool,
answering as the pick does here, stopped after; a server killed mid-sweep or one that never
comes up is one clean error, with no server left running."""

import json
import os
import threading

import psutil
import pytest
from typer.testing import CliRunner

from optimize.cli import app
from optimize.errors import UserError
from optimize.serve.pick_json import ServedPick
from optimize.serve.server_sweep import sweep_through_server


def _servers() -> list[psutil.Process]:
    """Model servers this test process started and that are still running."""
    children = psutil.Process(os.getpid()).children(recursive=True)
    return [
        p
        for p in children
        if p.is_running() and "optimize.serve.kserve_server" in " ".join(p.cmdline())
    ]


def test_the_pick_served_over_http_answers_as_it_does_here(picked):
    args = ["serve-bench", str(picked), "--seconds", "0.1", "--through-server"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "serving overhead through KServe: p50" in result.output
    in_process, served = json.loads((picked / "serving" / "load_sweep.json").read_text())["sweeps"]
    assert served["via"] == "through KServe" and served["round_trip_error"] < 1e-5
    assert served["points"] and all(p["failed"] == 0 for p in served["points"])
    assert all(p["throughput_per_s"] > 0 for p in served["points"])
    # Open-loop arrivals at shares of the server's recommended throughput follow.
    assert [p["mode"] for p in served["points"]].count("open") == 3
    assert "through KServe" in (picked / "serving" / "load_sweep.md").read_text()
    assert not _servers()


def test_a_server_killed_mid_sweep_is_one_error_and_nothing_is_left(picked):
    def kill_when_loaded(message: str) -> None:
        if message.startswith("load through the server"):
            (server,) = _servers()
            threading.Timer(0.05, server.kill).start()

    with pytest.raises(UserError, match="the model server stopped during the sweep"):
        sweep_through_server(ServedPick.read(picked), 1, None, None, 0.3, kill_when_loaded)
    assert not _servers()


def test_a_server_that_does_not_come_up_in_time_is_stopped(picked):
    with pytest.raises(UserError, match=r"did not come up within 0\.01 s; it was stopped"):
        sweep_through_server(ServedPick.read(picked), 1, None, None, 0.1, start_timeout_s=0.01)
    assert not _servers()
