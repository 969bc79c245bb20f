"""The one kind of error that is the user's to fix: bad input, named where it is checked.

Every layer raises it (a target that is not there, a pass option out of range, a recipe
key misspelt); the CLI prints its message in one line and exits 2. Anything else that
escapes a run is a bug in the tool, reported as an internal error.
"""


class UserError(ValueError):
    """Bad input: the message says what was wrong and what to do.

    A ValueError, so that checks inside configuration validators and dataclass
    `__post_init__` methods report through the same channels as any value check.
    """
