"""The output folder: whole-or-nothing writes, the artifact manifest, variant folders."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def copy_atomic(src: Path, dst: Path) -> None:
    """Copy a file so that `dst` appears whole or not at all."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def publish_dir(staging: Path, final: Path) -> None:
    """Move a finished staging folder into place, replacing any earlier one."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)


def staging_dir(parent: Path, name: str) -> Path:
    """A fresh, hidden folder beside where `name` will be published."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.", suffix=".partial"))


def write_manifest(out_dir: Path, artifacts: list[Path]) -> Path:
    """manifest.json: the sha256 and size of each artifact, paths relative to `out_dir`."""
    entries = [
        {
            "path": str(p.relative_to(out_dir)),
            "sha256": sha256_file(p),
            "bytes": p.stat().st_size,
        }
        for p in sorted(artifacts)
    ]
    path = out_dir / MANIFEST
    write_json_atomic(path, {"artifacts": entries})
    return path
