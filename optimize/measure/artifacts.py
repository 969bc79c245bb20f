"""What a measuring child opens: an artifact on disk as it is, or the user's PyTorch source
loaded again (quantized to int8 for inductor where the row asks), with the inputs as that
model takes them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hardware.model_files import model_size_mb
from hardware.runtimes.pt2e import CALIBRATION_BATCHES, quantize_for_inductor
from hardware.runtimes.pytorch import weights_mb
from optimize.data.inputs import rows
from optimize.source.load import Source, SourceSpec
from passes.preprocess_spec import PreprocessSpec, apply_numpy

Feeds = dict[str, np.ndarray]


def as_given(feeds: Feeds) -> Feeds:
    """The run's inputs unchanged: what a variant file takes."""
    return feeds


@dataclass
class Loaded:
    """An artifact ready for its runtime to open: the thing opened, what it weighs, and the
    run's inputs turned into what it takes."""

    model: Any
    size_mb: float
    feeds: Callable[[Feeds], Feeds] = as_given


@dataclass(frozen=True)
class ModelFile:
    """A file a runtime opens as it is: an ONNX variant (with its external data)."""

    path: Path

    def load(self) -> Loaded:
        """The file, its size on disk with external data."""
        return Loaded(self.path, model_size_mb(self.path))


@dataclass(frozen=True)
class TorchSource:
    """The user's PyTorch model, loaded again in the child: raw inputs go through the
    preprocessing's NumPy reference first, and an int8 row quantizes it by PT2E on the
    run's calibration inputs."""

    spec: SourceSpec
    preprocess: PreprocessSpec | None = None
    int8: bool = False
    # The run's calibration inputs (raw, as the source takes them before preprocessing).
    calibration: dict[str, np.ndarray] | None = field(default=None, compare=False)
    # torch.compile's cache: kept in the output folder, so a re-run does not compile again.
    compile_cache: Path | None = None

    def load(self) -> Loaded:
        """The model, its weights in memory as its size, and its positional inputs in the
        order its signature takes them."""
        if self.compile_cache is not None:
            # Read by inductor when it first compiles, even with torch already imported.
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(self.compile_cache)
        source = self.spec.load()
        model = self._quantized(source) if self.int8 else source.model
        names = [s.name for s in source.inputs]

        def positional(feeds: Feeds) -> Feeds:
            ready = self.model_feeds(feeds)
            return {name: ready[name] for name in names}

        return Loaded(model, weights_mb(model), positional)

    def model_feeds(self, feeds: Feeds) -> Feeds:
        """Raw inputs as the model takes them: through the preprocessing's NumPy reference."""
        return apply_numpy(self.preprocess, feeds) if self.preprocess else feeds

    def _quantized(self, source: Source) -> Any:
        """The source's model quantized by PT2E on the calibration inputs."""
        calibration = self.model_feeds(self.calibration or {})
        names = [s.name for s in source.inputs]
        dynamic = [spec.has_symbolic_batch for spec in source.inputs]
        total = len(calibration[names[0]])
        fixed = [spec.dims[0] for spec in source.inputs if not spec.has_symbolic_batch]
        # A model with a fixed batch calibrates on batches of that size; others on a few
        # batches that cover every sample.
        size = fixed[0] if fixed else max(1, -(-total // CALIBRATION_BATCHES))
        calibration = rows(calibration, max(total, size))
        batches = [
            [calibration[n][start : start + size] for n in names]
            for start in range(0, max(total, size) - size + 1, size)
        ]
        example = (
            batches[0]
            if fixed
            else list(rows(dict(zip(names, batches[0], strict=True)), 2).values())
        )
        return quantize_for_inductor(source.model, example, dynamic, batches)
