"""A model file before it is read: whether it is there, which form its bytes show, and the
content id every cache keys on."""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

from optimize.errors import UserError

ACCEPTED_FORMS = (
    "TorchScript (torch.jit.save), an ExportedProgram (torch.export.save, .pt2), "
    "a whole pickled nn.Module (torch.save(model), with --trust-pickle), ONNX, or a "
    "Hugging Face model folder (save_pretrained)"
)
# 'org/name', as a Hugging Face Hub id reads.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def check_file(path: Path) -> None:
    """Refuse a path that is missing, a folder without config.json, or empty."""
    if not path.exists():
        hub = (
            "; a Hugging Face Hub id is not fetched: this tool never downloads, so fetch it "
            f"first (huggingface-cli download {path} --local-dir DIR) and pass DIR"
            if HUB_ID.match(str(path)) and not path.parent.exists()
            else ""
        )
        raise UserError(f"model file not found: {path}{hub}")
    if path.is_dir():
        raise UserError(
            f"{path} is a directory with no config.json; pass the model file inside it, or a "
            "Hugging Face model folder as save_pretrained writes it"
        )
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty (0 bytes); save the model again")


def not_a_model(path: Path, detail: str) -> UserError:
    """The one-line refusal of a file in no accepted form, with what was seen."""
    return UserError(
        f"{path} is not a model file this tool reads ({detail}); accepted: {ACCEPTED_FORMS}"
    )


def detect_form(path: Path) -> str:
    """'torchscript', 'exported_program', 'pickle' or 'onnx', from the file's bytes."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            # torch writes every entry under one root folder named after the file.
            inner = {n.split("/", 1)[-1] for n in archive.namelist()}
        if "archive_format" in inner:
            return "exported_program"
        if "constants.pkl" in inner and any(n.startswith("code/") for n in inner):
            return "torchscript"
        if "data.pkl" in inner:
            return "pickle"
        raise not_a_model(path, "a zip archive, but not one torch writes")
    with path.open("rb") as file:
        first = file.read(1)
    # torch.save's legacy (non-zip) format is a bare pickle, whose first opcode is PROTO.
    return "pickle" if first == b"\x80" else "onnx"


def file_digest(files: list[Path]) -> str:
    """SHA-256 of the files' bytes, in order."""
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
