"""The output folder: whole-or-nothing writes, the artifact manifest, variant folders."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from optimize.errors import UserError

MANIFEST = "manifest.json"


def _process_umask() -> int:
    """The umask every file the user creates follows (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _readable_like_any_file(path: str | Path, directory: bool = False) -> None:
    """Give a temporary file or folder the mode the user's umask gives any new one: the
    temporary-file helpers create them private (0600, 0700), which would keep a model
    server running as another user from reading what the run published."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_process_umask())


def check_output_folder(out_dir: Path) -> None:
    """Refuse, before any work, an output folder that cannot be made or written: a file in
    its place or on its path, or a place this user may not write."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir}: this is a file, not a folder; name a folder")
    existing = next(p for p in (out_dir, *out_dir.parents) if p.exists())
    if not existing.is_dir():
        raise UserError(
            f"--out {out_dir}: {existing} is a file, so no folder can be made under it; "
            "name another folder"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(
            f"--out {out_dir}: {existing} is not writable by this user; name a folder you can "
            "write to"
        )


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        _readable_like_any_file(tmp)
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
        _readable_like_any_file(tmp)
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
    folder = Path(tempfile.mkdtemp(dir=parent, prefix=f".{name}.", suffix=".partial"))
    _readable_like_any_file(folder, directory=True)
    return folder


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
