"""The order chains are tried in: most expected speed-up first, from what earlier runs on
the same hardware class measured (kept in a user-level file) or, for a chain never seen
there, from the CPU's features. A budgeted run then spends its time where the wins are."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from optimize.build.variant import Candidate, RuntimeRow, Variant
from optimize.config.chains import VNNI_FLAGS, Chain
from optimize.store import write_json_atomic

GAINS_FILE = "expected_gains.json"
# Each chain keeps its latest figures per hardware class: enough to average out one model.
KEPT_PER_CHAIN = 8

# Half-precision arithmetic without fp16 units only adds conversions on a CPU.
FP16_FLAGS = ("avx512_fp16", "amx_fp16")


def gains_folder() -> Path | None:
    """Where the expected gains are kept across runs: $OPTIMIZE_CACHE_DIR, else the user's
    cache folder; None when OPTIMIZE_CACHE_DIR is set empty (nothing kept)."""
    configured = os.environ.get("OPTIMIZE_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "optimize"


def chain_key(chain: Chain) -> str:
    """A chain as the gains file names it: its passes' labels."""
    return " → ".join(p.label() for p in chain.passes)


def feature_prior(chain: Chain, cpu_flags: list[str]) -> float:
    """The speed-up a chain is expected to give on a CPU with `cpu_flags`, before any run
    of it was measured on this hardware class."""
    gain = 1.0
    for pass_ in chain.passes:
        if pass_.name in ("quantize_dynamic", "quantize_static", "quantize_nncf"):
            # int8 dot products (VNNI/AMX) do four times the work of fp32 FMAs per cycle.
            gain *= 1.6 if any(f in cpu_flags for f in VNNI_FLAGS) else 1.1
        elif pass_.name == "fp16":
            gain *= 1.2 if any(f in cpu_flags for f in FP16_FLAGS) else 0.7
        elif pass_.name == "onnxscript_optimize":
            gain *= 1.05
    return gain


def read_gains(hardware_class: str) -> dict[str, list[float]]:
    """The gains earlier runs measured on `hardware_class`, by chain; empty when none
    were kept or the file cannot be read (it only orders the search)."""
    folder = gains_folder()
    if folder is None or not (folder / GAINS_FILE).is_file():
        return {}
    try:
        kept = json.loads((folder / GAINS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    found = kept.get(hardware_class, {}) if isinstance(kept, dict) else {}
    return found if isinstance(found, dict) else {}


def expected_gain_order(
    chains: list[Chain], cpu_flags: list[str], measured: dict[str, list[float]]
) -> list[Chain]:
    """`chains` with the baseline first and the others by expected speed-up, highest first:
    the geometric mean of the gains `measured` on this hardware class, or the CPU's prior
    for a chain not measured there. An accuracy alternative follows the chain it is one to
    (it is tried only when that one falls short). Equal expectations keep their order."""

    def expected(chain: Chain) -> float:
        gains = [g for g in measured.get(chain_key(chain), []) if g > 0]
        if gains:
            return math.exp(sum(map(math.log, gains)) / len(gains))
        return feature_prior(chain, cpu_flags)

    by_key = {chain_key(c): c for c in chains}

    def order(chain: Chain) -> tuple[float, int]:
        base = chain.accuracy_for and by_key.get(" → ".join(p.label() for p in chain.accuracy_for))
        return (expected(base), -1) if base else (expected(chain), 0)

    baseline = [c for c in chains if not c.passes]
    rest = [c for c in chains if c.passes]
    return baseline + sorted(rest, key=order, reverse=True)


def observed_gains(
    chains: list[Chain], baseline: Variant, variants: list[Candidate]
) -> dict[str, float]:
    """Each chain's gain in this run: the baseline's latency in ONNX Runtime over the
    fastest within the user's limits of the chain's last variant and the other runtimes'
    rows on it (OpenVINO on an int8 file); 1 (no gain) where none is within them."""
    if not baseline.measured:
        return {}
    depth = len(baseline.steps)
    made_by = {
        tuple(s.label for s in v.steps[depth:]): v
        for v in variants
        if isinstance(v, Variant) and v.measured and len(v.steps) > depth
    }
    gains = {}
    for chain in chains:
        found = made_by.get(tuple(p.label() for p in chain.passes))
        if found is None:
            continue
        runs = [found] + [r for r in variants if isinstance(r, RuntimeRow) and r.parent == found.id]
        usable = [r.p50_ms for r in runs if r.measured and not r.outside_limits]
        gains[chain_key(chain)] = baseline.p50_ms / min(usable) if usable else 1.0
    return gains


def remember_gains(hardware_class: str, gains: dict[str, float]) -> None:
    """Add this run's gains to the file, keeping the latest few per chain; a file that
    cannot be written costs only the order of the next run."""
    folder = gains_folder()
    if folder is None or not gains:
        return
    try:
        kept = json.loads((folder / GAINS_FILE).read_text())
    except (OSError, ValueError):
        kept = {}
    kept = kept if isinstance(kept, dict) else {}
    mine = kept.setdefault(hardware_class, {})
    for key, gain in gains.items():
        mine[key] = (list(mine.get(key, [])) + [round(gain, 4)])[-KEPT_PER_CHAIN:]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_json_atomic(folder / GAINS_FILE, kept)
    except OSError:
        return
