"""Train the example digits CNN (seconds) and save it as a torch.export program plus held-out
evaluation data: `python examples/make_digits_cnn.py MODEL.pt2 EVAL.npz`."""

import sys
from pathlib import Path

import numpy as np
import torch

from optimize.examples import digits_data, train_digits_cnn


def main(model_path: Path, eval_path: Path) -> None:
    data = digits_data()
    model = train_digits_cnn(data)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(
        model, (torch.from_numpy(data.test_x[:2]),), dynamic_shapes=({0: batch},)
    )
    model_path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, model_path)
    np.savez(eval_path, x=data.test_x, labels=data.test_y)
    print(f"saved {model_path} and {eval_path} ({len(data.test_y)} held-out digits)")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
