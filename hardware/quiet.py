"""Library chatter kept off the user's terminal: what libraries print about themselves while
they load (torchao's GPU kernels that a CPU machine lacks, torch's deprecations, progress
bars), which says nothing about the user's model."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

# Loggers whose warnings are about the library itself; they stay at errors once quieted.
LIBRARY_LOGGERS = ("torchao", "torch.utils._pytree")


@contextlib.contextmanager
def quietly() -> Iterator[None]:
    """Run the body with the libraries' warnings and stderr output dropped; exceptions
    still propagate."""
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield
