"""A tiny PyTorch model and its ONNX export, built once per test module, for every
runtime to open."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from hardware.profile import TimingBudget


@dataclass
class TinyModel:
    """The same model as each runtime takes it, inputs at batch 1 and 4, and the outputs
    PyTorch computes on them directly."""

    module: object
    onnx_path: Path
    feeds: dict[str, np.ndarray]
    batch_feeds: dict[str, np.ndarray]
    expected: np.ndarray

    def artifact(self, takes: str):
        """The model in the form a runtime takes."""
        return {"onnx": self.onnx_path, "torch": self.module}[takes]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> TinyModel:
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4)
    ).eval()
    path = tmp_path_factory.mktemp("tiny") / "tiny.onnx"
    torch.onnx.export(
        module,
        (torch.zeros(2, 8),),
        str(path),
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch"}},
        dynamo=False,
    )
    rng = np.random.default_rng(0)
    feeds = {"x": rng.standard_normal((1, 8)).astype(np.float32)}
    batch_feeds = {"x": rng.standard_normal((4, 8)).astype(np.float32)}
    with torch.no_grad():
        expected = module(torch.from_numpy(batch_feeds["x"])).numpy()
    return TinyModel(module, path, feeds, batch_feeds, expected)


@pytest.fixture(scope="session")
def tiny_budget() -> TimingBudget:
    """A few timed runs: enough to exercise the loop, too few to rank anything."""
    return TimingBudget(warmup_runs=1, warmup_s=0, measure_s=0.01, min_runs=3)


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """Opening a PyTorch model sets the process's thread count: give the next test its own."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
