"""What the user is told when a run stops: their mistake (UserError, exit 2) in one line,
or a bug in the tool (any other exception, exit 3) in one line that says how to see more."""

from __future__ import annotations

import traceback

from hardware.errors import UserError

USER_ERROR_EXIT = 2
INTERNAL_ERROR_EXIT = 3

__all__ = [
    "INTERNAL_ERROR_EXIT",
    "USER_ERROR_EXIT",
    "UserError",
    "first_line",
    "full_traceback",
    "internal_error_line",
]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def internal_error_line(exc: BaseException) -> str:
    """One line for a bug: that it is one, what it was, and how to see the details."""
    first = str(exc).strip().splitlines()
    detail = f": {first[0]}" if first else ""
    return (
        f"internal error ({type(exc).__name__}{detail}); this is a bug in optimize, not in "
        "your input: run again with --debug for the full traceback, and report it"
    )


def full_traceback(exc: BaseException) -> str:
    """The traceback of `exc`, with the traceback of any child process it came from."""
    text = "".join(traceback.format_exception(exc))
    seen = exc
    while seen is not None:
        child = getattr(seen, "child_traceback", "")
        if child:
            text += f"\nThe child process's traceback:\n{child}"
        seen = seen.__cause__ or seen.__context__
    return text
