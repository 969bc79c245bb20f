"""Programs whose outputs are a library's types (a transformers ModelOutput): loaded in a
fresh process by importing the library, or refused in one line naming it."""

import subprocess
import sys
import textwrap

import pytest

LOAD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from optimize.errors import UserError
    from optimize.source.load import load_source
    assert "transformers" not in sys.modules
    try:
        source = load_source(Path(sys.argv[1]))
    except UserError as exc:
        print("refused:", exc)
    else:
        print("loaded:", [spec.name for spec in source.inputs], "transformers" in sys.modules)
    """
)


def _load_in_fresh_process(path, cwd):
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_transformers_program_loads_by_importing_transformers(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=32,
    )
    model = transformers.BertModel(config).eval()
    program = torch.export.export(model, (torch.randint(0, 100, (2, 16)),))
    torch.export.save(program, tmp_path / "bert.pt2")
    assert _load_in_fresh_process(tmp_path / "bert.pt2", tmp_path) == "loaded: ['input_ids'] True"


def test_a_type_from_a_package_that_is_not_installed_is_named(tmp_path):
    """A program saved where a package registered its output type, loaded where the
    package is not importable."""
    package = tmp_path / "made" / "vanishing_outputs"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            import dataclasses
            import torch
            import torch.utils._pytree as pytree

            @dataclasses.dataclass
            class Pair:
                first: torch.Tensor
                second: torch.Tensor

            pytree.register_dataclass(Pair, serialized_type_name="vanishing_outputs.Pair")

            class Model(torch.nn.Module):
                def forward(self, x):
                    return Pair(x + 1, x * 2)
            """
        )
    )
    save = (
        "import sys, torch; sys.path.insert(0, sys.argv[1]); import vanishing_outputs as v; "
        "p = torch.export.export(v.Model(), (torch.zeros(2, 3),)); "
        "torch.export.save(p, sys.argv[2])"
    )
    path = tmp_path / "pair.pt2"
    subprocess.run(
        [sys.executable, "-c", save, str(package.parent), str(path)], check=True, timeout=120
    )
    line = _load_in_fresh_process(path, tmp_path)
    assert line.startswith("refused: ") and "vanishing_outputs.Pair" in line
    assert line.endswith("pip install vanishing_outputs, then run again")
