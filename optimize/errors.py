"""The error a user sees as one line: what was wrong and what to do."""


class OptimizeError(Exception):
    """Bad input or a failed job step, with a message meant for the user."""
