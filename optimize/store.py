"""The output folder: whole-or-nothing writes, the artifact manifest, variant folders, and
the run's temporary folder and compile cache under its cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from optimize.errors import UserError

MANIFEST = "manifest.json"
# OUT/cache/tmp/<host>-<pid>: a run's temporary folder, named by the process that owns it,
# so a later run tells a dead run's folder from a live one's, on this machine or another
# sharing the output folder.
TEMP_FOLDER = "tmp"
# The name's start of a run's temporary folder in the system's, where OUT's path is not
# plain (see compile_cache_dir).
SYSTEM_TEMP_PREFIX = "optimize-run-"
# Where libraries write temporary files: Python's tempfile and ONNX Runtime read TMPDIR;
# torch.compile keeps what it compiled in a cache of its own.
TEMP_ENV = "TMPDIR"
COMPILE_CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
# Ray keeps a cluster it starts (--cluster local) under TMPDIR too, sockets included, whose
# paths may not exceed 107 bytes: it keeps the system's temporary folder, as before.
RAY_TEMP_ENV = "RAY_TMPDIR"


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
    its place or on its path, or a place this user or its file system does not let write."""
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
    made = missing_folders(out_dir)
    try:
        # Some file systems refuse new folders whatever the permission bits say (/proc).
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(
            f"--out {out_dir}: the folder cannot be made under {existing} ({exc.strerror}); "
            "name a folder you can write to"
        ) from None
    # Nothing is left behind should the run stop on bad input before writing anything.
    remove_if_empty(made)


def missing_folders(path: Path) -> list[Path]:
    """`path` and its ancestors that do not exist yet, deepest first."""
    path = Path(path).resolve()
    return [p for p in (path, *path.parents) if not p.exists()]


def remove_if_empty(folders: list[Path]) -> None:
    """Remove each of `folders` (deepest first) that is empty; keep the rest."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


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
    """Move a finished staging folder into place, replacing any earlier one. Its files get
    the mode the user's umask gives any new file: some writers make theirs private (onnx
    writes external data 0600)."""
    for path in staging.rglob("*"):
        if path.is_file() and not path.is_symlink():
            _readable_like_any_file(path)
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
    """manifest.json: the sha256 and size of each artifact (each file of an artifact that
    is a folder), paths relative to `out_dir`."""
    files = [p for p in artifacts if not p.is_dir()]
    for folder in (p for p in artifacts if p.is_dir()):
        files += [p for p in folder.rglob("*") if p.is_file()]
    entries = [
        {
            "path": str(p.relative_to(out_dir)),
            "sha256": sha256_file(p),
            "bytes": p.stat().st_size,
        }
        for p in sorted(set(files))
    ]
    path = out_dir / MANIFEST
    write_json_atomic(path, {"artifacts": entries})
    return path


def compile_cache_dir(cache_dir: Path) -> Path | None:
    """Where torch.compile keeps what it compiled: in the output folder's cache, so a re-run
    does not compile again; None (PyTorch's own cache) when that path holds characters the
    C++ compiler's command line would split on."""
    folder = cache_dir.resolve() / "torch_compile"
    return folder if re.fullmatch(r"[\w./+-]+", str(folder)) else None


@contextlib.contextmanager
def run_temp_folder(cache_dir: Path) -> Iterator[Path]:
    """A private folder for a run's temporary files, made on entry and removed on exit
    however the run ends: this process's tempfile module writes there, and so does every
    child process started before exit (TMPDIR), and torch.compile's cache goes to
    compile_cache_dir, where the next run reuses it. Folders of killed runs are removed
    first. End the run's child processes before leaving."""
    compile_cache = compile_cache_dir(cache_dir)
    under_out = compile_cache is not None
    if under_out:
        parent, prefix = cache_dir.resolve() / TEMP_FOLDER, ""
    else:
        # torch.compile then keeps its cache in the temporary folder, and it cannot hand
        # the C++ compiler a path like the output folder's: use the system's instead.
        parent, prefix = Path(tempfile.gettempdir()), SYSTEM_TEMP_PREFIX
    remove_dead_runs_folders(parent, prefix)
    folder = parent / f"{prefix}{_host()}-{os.getpid()}"
    made = missing_folders(folder)
    folder.mkdir(mode=0o700, parents=True)
    saved_env = {name: os.environ.get(name) for name in (TEMP_ENV, COMPILE_CACHE_ENV, RAY_TEMP_ENV)}
    saved_tempdir = tempfile.tempdir
    os.environ.setdefault(RAY_TEMP_ENV, tempfile.gettempdir())
    os.environ[TEMP_ENV] = tempfile.tempdir = str(folder)
    if under_out:
        os.environ[COMPILE_CACHE_ENV] = str(compile_cache)
    try:
        yield folder
    finally:
        tempfile.tempdir = saved_tempdir
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        # What cannot be removed now (a file a library still holds) the next run removes.
        shutil.rmtree(folder, ignore_errors=True)
        # The folders made for it, the output folder among them when the run wrote nothing
        # else; a folder another live run still uses is not empty and stays.
        remove_if_empty(made[1:] or ([parent] if under_out else []))


def remove_dead_runs_folders(parent: Path, prefix: str = "") -> list[Path]:
    """Remove the temporary folders under `parent` of runs on this machine whose process
    has ended (killed before it could remove its own), and any named after this process,
    which cannot have made it yet; returns those removed."""
    if not parent.is_dir():
        return []
    name = re.compile(rf"{re.escape(prefix)}{re.escape(_host())}-(\d+)")
    removed = []
    for folder in parent.iterdir():
        match = name.fullmatch(folder.name)
        if match is None or not folder.is_dir():
            continue
        pid = int(match[1])
        if pid == os.getpid() or not psutil.pid_exists(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _host() -> str:
    """This machine's name as it may appear in a folder name."""
    return re.sub(r"[^\w.-]", "_", socket.gethostname()) or "host"


def remove_unfinished_writes(out_dir: Path) -> None:
    """Remove what a run killed in the middle of a write left in `out_dir`: the temporary
    files and staging folders of writes that never finished (finished ones are renamed
    into place)."""
    # One walk of the folder, which may hold thousands of compiled kernels.
    for path in list(out_dir.rglob(".*")):
        if path.name.endswith(".tmp"):
            path.unlink(missing_ok=True)
        elif path.name.endswith(".partial"):
            shutil.rmtree(path, ignore_errors=True)
