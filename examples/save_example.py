"""Save an example model as a torch.export program, with evaluation and calibration data:
`python examples/save_example.py {digits,transformer,tabular} OUT_DIR`."""

import sys
from pathlib import Path

import numpy as np
import torch

from optimize.examples import (
    TABULAR_PREPROCESSING,
    digits_data,
    tabular_data,
    tiny_transformer_module,
    train_digits_cnn,
    train_tabular_mlp,
)
from passes.preprocess_spec import apply_numpy, fit, parse_preprocessing


def _save_program(model: torch.nn.Module, sample: np.ndarray, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (torch.from_numpy(sample),), dynamic_shapes=({0: batch},))
    torch.export.save(program, path)


def save_digits(out: Path) -> None:
    """The digits CNN trained for seconds; held-out digits with labels to evaluate,
    training digits to calibrate."""
    data = digits_data()
    _save_program(train_digits_cnn(data), data.test_x[:2], out / "digits_cnn.pt2")
    np.savez(out / "digits_cnn_eval.npz", x=data.test_x, labels=data.test_y)
    np.savez(out / "digits_cnn_calibration.npz", x=data.train_x[:256])


def save_transformer(out: Path) -> None:
    """A small transformer encoder over (batch, 16, 64) features; seeded random inputs."""
    rng = np.random.default_rng(0)
    features = rng.standard_normal((384, 16, 64)).astype(np.float32)
    _save_program(tiny_transformer_module(), features[:2], out / "tiny_transformer.pt2")
    np.savez(out / "tiny_transformer_eval.npz", x=features[:128])
    np.savez(out / "tiny_transformer_calibration.npz", x=features[128:])


def save_tabular(out: Path) -> None:
    """An MLP on breast_cancer features trained after preprocessing (median for invalid
    values, standardisation); raw features with labels to evaluate, raw training features
    to fit the preprocessing and calibrate. The recipe examples/tabular.toml runs it."""
    data = tabular_data()
    spec = fit(parse_preprocessing(TABULAR_PREPROCESSING), {"x": data.train_x})
    model = train_tabular_mlp(apply_numpy(spec, {"x": data.train_x})["x"], data.train_y)
    sample = apply_numpy(spec, {"x": data.test_x[:2]})["x"]
    _save_program(model, sample, out / "tabular_mlp.pt2")
    np.savez(out / "tabular_eval.npz", x=data.test_x, labels=data.test_y)
    np.savez(out / "tabular_train.npz", x=data.train_x)


EXAMPLES = {"digits": save_digits, "transformer": save_transformer, "tabular": save_tabular}

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in EXAMPLES:
        sys.exit(f"usage: python {sys.argv[0]} {{{','.join(EXAMPLES)}}} OUT_DIR")
    out_dir = Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    EXAMPLES[sys.argv[1]](out_dir)
    print(f"saved the {sys.argv[1]} example in {out_dir}")
