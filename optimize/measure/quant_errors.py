"""Each node's estimated quantization error, from a float run on the first evaluation rows:
what the accuracy fallback ranks nodes by. Runs in a child process."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from optimize.build.variant import Variant
from optimize.data.inputs import rows
from optimize.isolation import IsolatedRunError
from optimize.measure.workload import Workload
from passes.base import Pass
from passes.quant_error import quantization_errors

if TYPE_CHECKING:
    from optimize.measure.measurer import Measurer


@dataclass
class ErrorJob:
    """What a child process needs to estimate each node's quantization error: the float
    model, the op types and whether only weights are quantized, and the workload whose
    evaluation inputs feed the float run."""

    model_path: Path
    op_types: tuple[str, ...]
    weights_only: bool
    workload: Workload


# Rows of the evaluation set the float run for quantization errors takes: a run per node,
# so rows cost most on a transformer. On MiniLM at sequence 128, 4 rows rank its 56 nodes
# as 16 do (Spearman 0.998, the same four first) in 9 s against 24.
ERROR_ROWS = 4


def estimate_quantization_errors(job: ErrorJob) -> dict[str, float]:
    """Each node's estimated relative output error from quantizing it (see
    passes.quant_error), from a float run on the first evaluation rows."""
    first = next(job.workload.eval_store.batches())
    feeds = rows(first.feeds, min(ERROR_ROWS, len(next(iter(first.feeds.values())))))
    return quantization_errors(job.model_path, job.op_types, job.weights_only, feeds)


def node_errors(measurer: Measurer, parent: Variant, pass_: Pass) -> dict[str, float]:
    """How much quantizing each node of `parent` by `pass_` would hurt, estimated in the
    measurer's warm worker and stored with its figures; empty when the estimate fails (the
    fallback then keeps graph order)."""
    job = ErrorJob(
        parent.path, tuple(pass_.repair_op_types), pass_.quantizes_weights_only, measurer.workload
    )
    what = json.dumps([job.op_types, job.weights_only])
    name = f"{parent.id}-{hashlib.sha256(what.encode()).hexdigest()[:12]}"
    try:
        return measurer.reused(
            "quantization_errors",
            name,
            lambda: measurer.run_unit(estimate_quantization_errors, job, "estimating errors"),
        )
    except IsolatedRunError:
        return {}
