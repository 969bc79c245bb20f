"""Running one unit of work in a fresh child process with a time limit.

A crash inside a native runtime, or a hang, then fails that unit alone; and a fresh
process gives honest peak-memory figures.
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import traceback
from collections.abc import Callable
from typing import Any

from optimize.errors import UserError


class IsolatedRunError(Exception):
    """The child process failed: raised, crashed, or ran past its time limit.

    `child_traceback` is the child's own traceback when it raised, so --debug can show
    where; `user_error` says the child stopped on the user's input, not on a bug."""

    def __init__(self, message: str, child_traceback: str = "", user_error: bool = False) -> None:
        super().__init__(message)
        self.child_traceback = child_traceback
        self.user_error = user_error


def _child(conn, fn: Callable[[Any], Any], arg: Any) -> None:
    try:
        conn.send(("ok", fn(arg)))
    except Exception as exc:  # the parent reports any failure of the unit as its reason
        kind = "user_error" if isinstance(exc, UserError) else "error"
        message = str(exc) if kind == "user_error" else f"{type(exc).__name__}: {exc}"
        conn.send((kind, (message, traceback.format_exc())))
    finally:
        conn.close()


def run_isolated(fn: Callable[[Any], Any], arg: Any, timeout_s: float) -> Any:
    """Call `fn(arg)` in a spawned process and return its result.

    `fn` must be importable at module level, and `arg` and the result picklable.
    """
    context = mp.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, fn, arg), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout_s):
            process.kill()
            process.join()
            raise IsolatedRunError(f"timed out after {timeout_s:.0f} s")
        try:
            status, payload = receiver.recv()
        except EOFError:
            process.join()
            raise IsolatedRunError(_crash_reason(process.exitcode)) from None
    finally:
        receiver.close()
    process.join()
    if status != "ok":
        message, child_traceback = payload
        raise IsolatedRunError(message, child_traceback, user_error=status == "user_error")
    return payload


def _crash_reason(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"process crashed ({name})"
    return f"process exited with code {exitcode} before reporting"
