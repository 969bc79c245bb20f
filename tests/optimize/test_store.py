"""Whole-or-nothing writes, the manifest, and the run's temporary folder."""

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from optimize.store import (
    COMPILE_CACHE_ENV,
    SYSTEM_TEMP_PREFIX,
    TEMP_ENV,
    compile_cache_dir,
    copy_atomic,
    publish_dir,
    run_temp_folder,
    staging_dir,
    write_json_atomic,
    write_manifest,
    write_text_atomic,
)


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "report.json"
    write_json_atomic(path, {"a": 1})

    class Unserializable:
        def __str__(self):
            raise RuntimeError("cannot render")

    with pytest.raises(RuntimeError):
        write_json_atomic(path, {"a": Unserializable()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_manifest_lists_sha256_of_each_artifact(tmp_path):
    write_text_atomic(tmp_path / "report.md", "# hi\n")
    copy_atomic(tmp_path / "report.md", tmp_path / "sub" / "copy.md")
    manifest = write_manifest(tmp_path, [tmp_path / "report.md", tmp_path / "sub" / "copy.md"])
    entries = json.loads(manifest.read_text())["artifacts"]
    digest = hashlib.sha256(b"# hi\n").hexdigest()
    assert entries == [
        {"path": "report.md", "sha256": digest, "bytes": 5},
        {"path": "sub/copy.md", "sha256": digest, "bytes": 5},
    ]


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_outputs_follow_the_umask_like_any_file(tmp_path, umask):
    """A model server running as another user must be able to read what a run publishes."""
    previous = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "report.md", "# hi\n")
        copy_atomic(tmp_path / "report.md", tmp_path / "best.onnx")
        staging = staging_dir(tmp_path / "variants", "abc")
        write_text_atomic(staging / "variant.json", "{}")
        # onnx writes a model's external data private, whatever the umask.
        os.close(os.open(staging / "model.onnx.data", os.O_CREAT | os.O_WRONLY, 0o600))
        publish_dir(staging, tmp_path / "variants" / "abc")
    finally:
        os.umask(previous)
    names = ("report.md", "best.onnx", "variants/abc/variant.json", "variants/abc/model.onnx.data")
    for name in names:
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name
    assert stat.S_IMODE((tmp_path / "variants" / "abc").stat().st_mode) == 0o777 & ~umask


def test_the_run_temp_folder_is_private_shared_with_children_and_gone_after(tmp_path):
    """Whatever ends the run (here Ctrl-C), its temporary files go with it, and the
    environment is as it was."""
    cache = tmp_path / "out" / "cache"
    before = {name: os.environ.get(name) for name in (TEMP_ENV, COMPILE_CACHE_ENV)}
    system_temp = tempfile.gettempdir()
    child = [sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"]
    with pytest.raises(KeyboardInterrupt), run_temp_folder(cache) as folder:
        assert folder.parent == cache / "tmp"
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert tempfile.gettempdir() == str(folder)
        assert subprocess.run(child, capture_output=True, text=True).stdout.strip() == str(folder)
        assert os.environ[COMPILE_CACHE_ENV] == str(cache / "torch_compile")
        tempfile.mkstemp(suffix=".onnx.data")
        raise KeyboardInterrupt
    # The folders it made are gone too: nothing else was written in them.
    assert not (tmp_path / "out").exists()
    assert {name: os.environ.get(name) for name in before} == before
    assert tempfile.gettempdir() == system_temp


def _start_run_holding_a_temp_folder(cache: Path) -> tuple[subprocess.Popen, Path]:
    """A process inside run_temp_folder(cache), with a file in its folder, until killed."""
    code = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from optimize.store import run_temp_folder\n"
        "with run_temp_folder(Path(sys.argv[1])) as folder:\n"
        "    (folder / 'half-written.onnx.data').write_bytes(b'0' * 1024)\n"
        "    print(folder, flush=True)\n"
        "    time.sleep(120)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(cache)], stdout=subprocess.PIPE, text=True
    )
    return process, Path(process.stdout.readline().strip())


def test_the_next_run_removes_a_killed_runs_temp_folder_and_no_live_ones(tmp_path):
    cache = tmp_path / "cache"
    killed, killed_folder = _start_run_holding_a_temp_folder(cache)
    live, live_folder = _start_run_holding_a_temp_folder(cache)
    try:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        assert killed_folder.is_dir()
        with run_temp_folder(cache) as folder:
            assert not killed_folder.exists()
            assert sorted((cache / "tmp").iterdir()) == sorted([folder, live_folder])
        assert (live_folder / "half-written.onnx.data").is_file()
    finally:
        for process in (killed, live):
            process.kill()
            process.wait()
            process.stdout.close()


def test_an_output_path_the_compiler_would_split_keeps_temp_files_in_the_systems(
    tmp_path, monkeypatch
):
    """torch.compile's cache cannot live under such a path, nor in a temporary folder
    there; the run's temporary folder then goes to the system's, and is removed after."""
    system_temp = tmp_path / "system"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    cache = tmp_path / "my models" / "cache"
    compile_cache = os.environ.get(COMPILE_CACHE_ENV)
    with run_temp_folder(cache) as folder:
        assert folder.parent == system_temp and folder.name.startswith(SYSTEM_TEMP_PREFIX)
        assert os.environ.get(COMPILE_CACHE_ENV) == compile_cache
    assert list(system_temp.iterdir()) == [] and not cache.exists()


def test_the_compile_cache_stays_in_the_output_folder_unless_its_path_would_break_the_compiler(
    tmp_path,
):
    assert compile_cache_dir(tmp_path / "cache") == tmp_path / "cache" / "torch_compile"
    # The C++ compiler's command line splits on spaces: PyTorch's own cache then.
    assert compile_cache_dir(tmp_path / "my runs, v2" / "cache") is None


def test_what_a_killed_write_left_is_removed_and_finished_files_stay(tmp_path):
    from optimize.store import remove_unfinished_writes, write_text_atomic

    kept = tmp_path / "cache" / "profiles" / "a.json"
    kept.parent.mkdir(parents=True)
    write_text_atomic(kept, "{}")
    (kept.parent / ".a.json.x1y2.tmp").write_text("half")
    staging = tmp_path / "variants" / ".model.onnx.q9.partial"
    staging.mkdir(parents=True)
    (staging / "model.onnx").write_bytes(b"half")
    remove_unfinished_writes(tmp_path)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["a.json"]
    assert not staging.exists() and kept.read_text() == "{}"
