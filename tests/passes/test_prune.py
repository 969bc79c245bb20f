"""Structured and magnitude pruning of real PyTorch models: smaller, exported, still running."""

import numpy as np
import pytest
import torch
from torch import nn

from hardware.targets import parse_target
from optimize.examples import top1_accuracy
from passes.base import PassContext, PassError, PassSkipped, TensorSpec
from passes.prune_magnitude import PruneMagnitude
from passes.prune_structured import PruneStructured

IMAGE = [TensorSpec("x", ("batch", 1, 8, 8))]
SEQUENCE = [TensorSpec("x", ("batch", 16, 64))]

# One pass over 512 digits training images: a second, and enough to recover most accuracy.
FINETUNE_FILE = """
import torch
from optimize.examples import digits_data


def train(model):
    data = digits_data()
    x, y = torch.from_numpy(data.train_x[:512]), torch.from_numpy(data.train_y[:512])
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for start in range(0, len(x), 64):
        optimizer.zero_grad()
        logits = model(x[start : start + 64])
        torch.nn.functional.cross_entropy(logits, y[start : start + 64]).backward()
        optimizer.step()
    return model
"""


class ResidualNet(nn.Module):
    """Conv + BatchNorm blocks with a skip connection and a concatenation."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(16, 16, 3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1),
            nn.BatchNorm2d(16),
        )
        self.branch = nn.Conv2d(16, 8, 1)
        self.head = nn.Linear(16 + 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        x = torch.cat([x, self.branch(x)], dim=1)
        return self.head(x.mean(dim=(2, 3)))


@pytest.fixture(scope="module")
def residual_net(digits):
    """A ResidualNet whose BatchNorm layers hold running statistics of real images."""
    torch.manual_seed(0)
    model = ResidualNet()
    with torch.no_grad():
        for start in range(0, 256, 64):
            model(torch.from_numpy(digits.train_x[start : start + 64]))
    return model.eval()


def context(model, digits):
    """What the pipeline gives a pass on the digits CNN: its input spec and test images."""
    return PassContext(parse_target("cpu"), IMAGE, {"x": digits.test_x[:64]}, model)


def prune(tmp_path, pass_, model, digits):
    """Apply `pass_` to `model`; its source file is never read, so none exists."""
    return pass_.apply(tmp_path / "src.pt", tmp_path / "out", context(model, digits))


def exported(model, digits):
    """`model` as torch.export gives it by default: fixed shapes, at batch 2."""
    return torch.export.export(model, (torch.from_numpy(digits.test_x[:2]),))


def run_saved(path, images):
    """Outputs of the saved .pt2 on `images`, as numpy."""
    with torch.no_grad():
        return torch.export.load(path).module()(torch.from_numpy(images)).numpy()


def snapshot(model):
    """Copies of the module's weights, to check later that a pass left them alone."""
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_unchanged(model, before):
    after = model.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key


@pytest.mark.parametrize("source", ["module", "exported_program"])
def test_structured_gives_a_smaller_model_with_a_dynamic_batch(
    source, digits_cnn, digits, tmp_path
):
    before = snapshot(digits_cnn)
    model = digits_cnn if source == "module" else exported(digits_cnn, digits)

    outcome = prune(tmp_path, PruneStructured(ratio=0.3), model, digits)

    assert outcome.path == tmp_path / "out" / "model.pt2"
    assert outcome.changed
    m = outcome.metrics
    assert m["params_after"] < m["params_before"]
    assert m["macs_after"] < m["macs_before"]
    assert "not recovered by fine-tuning" in outcome.note
    for batch in (1, 5):
        assert run_saved(outcome.path, digits.test_x[:batch]).shape == (batch, 10)
    assert_unchanged(digits_cnn, before)


def test_structured_prunes_a_program_as_it_prunes_its_module(residual_net, digits, tmp_path):
    from_module = prune(tmp_path / "m", PruneStructured(ratio=0.5), residual_net, digits)
    from_program = prune(
        tmp_path / "p", PruneStructured(ratio=0.5), exported(residual_net, digits), digits
    )

    images = digits.test_x[:5]
    np.testing.assert_allclose(
        run_saved(from_program.path, images), run_saved(from_module.path, images), atol=1e-5
    )


def test_structured_shrinks_residual_and_concatenated_layers_consistently(
    residual_net, digits, tmp_path
):
    before = snapshot(residual_net)

    outcome = prune(tmp_path, PruneStructured(ratio=0.5), residual_net, digits)

    weights = torch.export.load(outcome.path).state_dict
    channels = {k: v.shape for k, v in weights.items()}
    # The skip connection couples the stem's and the block's last channels.
    assert channels["stem.0.weight"][0] == channels["block.3.weight"][0] == 8
    assert channels["block.4.running_mean"] == (8,)
    assert channels["head.weight"] == (10, 8 + channels["branch.weight"][0])
    assert channels["branch.weight"][0] < 8
    assert run_saved(outcome.path, digits.test_x[:3]).shape == (3, 10)
    assert_unchanged(residual_net, before)


def test_structured_with_finetune_recovers_accuracy(digits_cnn, digits, tmp_path):
    before = snapshot(digits_cnn)
    hook = tmp_path / "recover.py"
    hook.write_text(FINETUNE_FILE)

    plain = prune(tmp_path / "plain", PruneStructured(ratio=0.7), digits_cnn, digits)
    tuned = prune(
        tmp_path / "tuned", PruneStructured(ratio=0.7, finetune=f"{hook}:train"), digits_cnn, digits
    )

    def accuracy(outcome):
        return top1_accuracy(run_saved(outcome.path, digits.test_x), digits.test_y)

    assert accuracy(tuned) > accuracy(plain) + 0.1
    assert "fine-tuned with" in tuned.note
    assert tuned.metrics["params_after"] == plain.metrics["params_after"]
    assert_unchanged(digits_cnn, before)


@pytest.fixture(scope="module")
def sequences():
    return np.random.default_rng(0).standard_normal((4, 16, 64)).astype(np.float32)


def test_structured_prunes_a_transformer_program_as_its_module(
    tiny_transformer, sequences, tmp_path
):
    batch = torch.export.Dim("batch")
    program = torch.export.export(
        tiny_transformer, (torch.from_numpy(sequences[:2]),), dynamic_shapes=({0: batch},)
    )
    outcomes = []
    for name, model in (("module", tiny_transformer), ("program", program)):
        ctx = PassContext(parse_target("cpu"), SEQUENCE, {"x": sequences}, model)
        pass_ = PruneStructured(ratio=0.3)
        outcomes.append(pass_.apply(tmp_path / "src", tmp_path / name, ctx))

    for outcome in outcomes:
        assert outcome.metrics["params_after"] < outcome.metrics["params_before"]
    from_module, from_program = (run_saved(o.path, sequences[:3]) for o in outcomes)
    assert from_module.shape == (3, 64)
    np.testing.assert_allclose(from_program, from_module, atol=1e-5)


def test_structured_explains_a_program_saved_with_a_fixed_batch(
    tiny_transformer, sequences, tmp_path
):
    # Its attention reshapes hold the batch it was traced at.
    program = torch.export.export(tiny_transformer, (torch.from_numpy(sequences[:2]),))
    ctx = PassContext(parse_target("cpu"), SEQUENCE, {"x": sequences}, program)

    with pytest.raises(
        PassError, match="give the eager nn.Module, or a .pt2 saved with a dynamic batch"
    ):
        PruneStructured(ratio=0.3).apply(tmp_path / "src.pt2", tmp_path / "out", ctx)


@pytest.mark.parametrize(
    "spec", ["no_colon_here", "tests.passes.test_prune:missing_function", "/no/such/file.py:f"]
)
def test_structured_rejects_a_bad_finetune_spec(spec, digits_cnn, digits, tmp_path):
    with pytest.raises(PassError, match="module:function"):
        prune(tmp_path, PruneStructured(finetune=spec), digits_cnn, digits)


@pytest.mark.parametrize("pass_", [PruneStructured(), PruneMagnitude()], ids=lambda p: p.name)
def test_torchscript_is_skipped_with_the_way_out(pass_, digits_cnn, digits, tmp_path):
    with pytest.raises(PassSkipped, match="eager nn.Module"):
        prune(tmp_path, pass_, torch.jit.script(digits_cnn), digits)


@pytest.mark.parametrize(
    "options", [{"ratio": 0.0}, {"ratio": 1.0}, {"ratio": -0.3}, {"norm": "l3"}]
)
def test_structured_rejects_bad_options(options):
    with pytest.raises(ValueError, match="prune_structured"):
        PruneStructured(**options)


@pytest.mark.parametrize("scope", ["global", "layer"])
@pytest.mark.parametrize("source", ["module", "exported_program"])
def test_magnitude_reaches_the_sparsity_and_compresses(scope, source, digits_cnn, digits, tmp_path):
    before = snapshot(digits_cnn)
    model = digits_cnn if source == "module" else exported(digits_cnn, digits)

    outcome = prune(tmp_path, PruneMagnitude(sparsity=0.6, scope=scope), model, digits)

    m = outcome.metrics
    assert m["sparsity"] == pytest.approx(0.6, abs=0.01)
    assert m["compressed_mb"] < m["dense_mb"]
    assert m["dense_mb"] == pytest.approx(outcome.path.stat().st_size / 2**20)
    assert "no faster" in outcome.note
    logits = run_saved(outcome.path, digits.test_x[:5])
    assert logits.shape == (5, 10)
    assert np.isfinite(logits).all()
    assert_unchanged(digits_cnn, before)


@pytest.mark.parametrize("options", [{"sparsity": 0.0}, {"sparsity": 1.0}, {"scope": "model"}])
def test_magnitude_rejects_bad_options(options):
    with pytest.raises(ValueError, match="prune_magnitude"):
        PruneMagnitude(**options)
