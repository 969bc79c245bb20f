"""Whole-or-nothing writes and the manifest."""

import hashlib
import json
import os
import stat

import pytest

from optimize.store import (
    copy_atomic,
    publish_dir,
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
        publish_dir(staging, tmp_path / "variants" / "abc")
    finally:
        os.umask(previous)
    for name in ("report.md", "best.onnx", "variants/abc/variant.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name
    assert stat.S_IMODE((tmp_path / "variants" / "abc").stat().st_mode) == 0o777 & ~umask
