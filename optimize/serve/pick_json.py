"""pick.json: what a server needs to run the pick, whichever runtime won: the runtime, the
artifact, its exact settings, and the inputs and outputs with dtypes and dynamic dims.
The serving files (Triton, KServe, the load sweep) are made from it alone."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optimize.errors import UserError
from optimize.store import write_json_atomic

PICK_FILE = "pick.json"


@dataclass(frozen=True)
class ServedPick:
    """The pick as pick.json records it. Paths are relative to the output folder `out_dir`;
    `best_onnx` is the best ONNX variant (a PyTorch pick's fallback for servers that take
    no Python), `source` the user's model file and `source_form` its form."""

    out_dir: Path
    runtime: str
    artifact: str
    label: str
    settings: dict[str, Any]
    providers: list[str]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    figures: dict[str, Any]
    target: str
    source: str
    source_form: str
    source_task: str | None
    best_onnx: str | None
    best_onnx_label: str | None
    # The float type the pick computes in, from the passes that made it (fp16 or fp32).
    float_precision: str = "fp32"
    # For a language model: the code that loads the pick in its runtime and generates, and
    # the prompt its timed runs started from (token ids), which serve-bench sends.
    loading_code: str = ""
    prompt_ids: list[int] = field(default_factory=list)

    @property
    def generative(self) -> bool:
        """Whether the pick is a language model served as text in, text out."""
        return self.source_task == "text-generation"

    @property
    def batches_on_first_dim(self) -> bool:
        """Whether a server may join requests along the first dim: every input's and
        output's first dim is dynamic."""
        return all(
            t["dims"] and isinstance(t["dims"][0], str) for t in [*self.inputs, *self.outputs]
        )

    @property
    def batch(self) -> int:
        """The largest batch the pick was measured at: what a server may batch up to."""
        return max(int(self.figures.get("throughput_batch") or 1), 1)

    @property
    def cores(self) -> int:
        """The cores the pick ran on: its thread count, or the physical cores ONNX Runtime
        takes when told 0."""
        return int(self.figures["cores"])

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k != "out_dir"}
        return data | {"report": "report.json"}

    @classmethod
    def read(cls, out_dir: Path) -> ServedPick:
        """pick.json of the output folder `out_dir`; a UserError when it has none."""
        path = Path(out_dir) / PICK_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(
                f"{path} is missing: run `optimize run MODEL --out {out_dir}` first, and "
                "check that it picked a variant (exit code 0)"
            ) from None
        except (OSError, ValueError) as exc:
            raise UserError(f"{path} cannot be read ({exc}); run `optimize run` again") from None
        data.pop("report", None)
        try:
            return cls(out_dir=Path(out_dir), **data)
        except TypeError:
            raise UserError(
                f"{path} was written by another version of optimize; run `optimize run` again"
            ) from None


def write_pick_json(out_dir: Path, pick: ServedPick | None) -> list[Path]:
    """Write pick.json for `pick` in `out_dir`; remove a stale one when there is none."""
    path = out_dir / PICK_FILE
    if pick is None:
        path.unlink(missing_ok=True)
        return []
    write_json_atomic(path, pick.to_dict())
    return [path]
