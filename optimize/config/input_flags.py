"""`--input NAME:DIMS[:DTYPE]` flags, parsed and checked before any model is read."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from optimize.errors import UserError
from passes.base import DTYPES, TensorSpec

# One sample of an input larger than this is a mistyped dim, not a model to optimize.
MAX_SAMPLE_BYTES = 2**30
FLAG_FORM = "NAME:DIMS[:DTYPE], e.g. x:batch,3,224,224:float32"


@dataclass(frozen=True)
class InputFlag:
    """One parsed --input flag, and whether it named a dtype (else float32 was assumed)."""

    spec: TensorSpec
    dtype_given: bool


def parse_input_flag(text: str) -> TensorSpec:
    """Parse `NAME:DIMS[:DTYPE]` (dims comma separated, ints or symbolic names) into a
    TensorSpec; dtype defaults to float32."""
    return _parse_flag(text).spec


def parse_input_flags(texts: list[str] | None) -> list[InputFlag]:
    """Parse each --input flag; each input may be named once."""
    flags = [_parse_flag(text) for text in texts or []]
    names = [f.spec.name for f in flags]
    if len(set(names)) != len(names):
        raise UserError(f"--input names repeat: {', '.join(names)}; give each input once")
    return flags


def _parse_flag(text: str) -> InputFlag:
    parts = [p.strip() for p in text.strip().split(":")]
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise UserError(f"bad --input '{text}': expected {FLAG_FORM}")
    dims: list[int | str] = []
    for dim in (d.strip() for d in parts[1].split(",")):
        if dim.isdigit():
            dims.append(int(dim))
        elif dim.isidentifier():
            dims.append(dim)
        else:
            raise UserError(
                f"bad --input '{text}': dim '{dim}' is neither a size nor a name; expected {FLAG_FORM}"
            )
    dtype = parts[2] if len(parts) == 3 else "float32"
    if dtype not in DTYPES:
        raise UserError(
            f"bad --input '{text}': unknown dtype '{dtype}'; use one of {', '.join(DTYPES)}"
        )
    sample = np.dtype(DTYPES[dtype]).itemsize * math.prod(d for d in dims[1:] if isinstance(d, int))
    if sample > MAX_SAMPLE_BYTES:
        raise UserError(
            f"bad --input '{text}': one sample would take {sample / 2**30:,.0f} GiB; "
            "check the dims (batch first, then one sample's shape)"
        )
    return InputFlag(TensorSpec(parts[0], tuple(dims), dtype), dtype_given=len(parts) == 3)
