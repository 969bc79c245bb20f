"""The files of a Hugging Face model folder: all of them, for the source's content id, and
the tokenizer's, to hand on beside the optimized model. Reads no model: no torch here."""

from __future__ import annotations

from pathlib import Path

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
)


def tokenizer_files(folder: Path) -> list[Path]:
    """The tokenizer's files in the folder."""
    return [folder / name for name in TOKENIZER_FILES if (folder / name).is_file()]


def folder_files(folder: Path) -> list[Path]:
    """Every file of the folder, in a stable order."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts)
