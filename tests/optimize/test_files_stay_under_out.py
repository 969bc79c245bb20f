"""A run writes only inside its output folder: its working directory and the temporary
folder are as they were when it ends, and every file under --out is an artifact the
manifest lists, a variant's record, or a cache entry."""

import json
import os
import stat
import subprocess
import sys

import pytest
from token_encoder import save_token_encoder

# Files a variant's folder keeps beside its model: its lineage and the figures measured.
VARIANT_RECORDS = {"variant.json", "screening.json", "measurements.json"}


@pytest.fixture
def umask_022():
    """Files created under the usual umask: an artifact is then readable by all (0644)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if not p.is_dir())


def test_a_run_writes_only_under_its_output_folder(tmp_path, umask_022):
    model_dir, cwd, temp, out = (tmp_path / n for n in ("model", "cwd", "tmp", "out"))
    for folder in (model_dir, cwd, temp):
        folder.mkdir()
    model = save_token_encoder(model_dir / "encoder.onnx")
    model_files = {p: p.read_bytes() for p in model_dir.iterdir()}
    command = [sys.executable, "-m", "optimize", "run", str(model), "--out", str(out)]
    command += ["--measure-seconds", "0.05"]
    env = {**os.environ, "TMPDIR": str(temp)}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]

    assert _files(cwd) == [] and list(cwd.iterdir()) == []
    assert list(temp.iterdir()) == []
    assert {p: p.read_bytes() for p in model_dir.iterdir()} == model_files

    manifest = json.loads((out / "manifest.json").read_text())["artifacts"]
    listed = {entry["path"] for entry in manifest} | {"manifest.json"}
    unexplained = [
        str(path)
        for path in _files(out)
        if str(path) not in listed
        and path.parts[0] != "cache"
        and not (path.parts[0] == "variants" and path.name in VARIANT_RECORDS)
    ]
    assert unexplained == []
    assert not (out / "cache" / "tmp").exists(), "the run's temporary folder outlived it"
    for name in listed:
        mode = stat.S_IMODE((out / name).stat().st_mode)
        assert mode & 0o044 == 0o044, f"{name} is not readable by others: {oct(mode)}"

    # The passes that wrote external data did run: the weights stayed outside the graph.
    report = json.loads((out / "report.json").read_text())
    external = [
        v for v in report["variants"] if v["path"] and (out / f"{v['path']}.data").is_file()
    ]
    passes = {v["steps"][-1]["name"] for v in external if v["steps"]}
    assert {"quantize_dynamic", "quantize_static", "onnxscript_optimize"} <= passes, passes
