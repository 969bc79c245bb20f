"""Causal language models as sources: a Hugging Face folder whose architecture generates text,
or a GGUF file, dequantized by transformers into a folder under the run's cache. The
source's model is that folder; the runtimes' own exporters start from it."""

from __future__ import annotations

import json
from pathlib import Path

from hardware.quiet import quietly
from optimize.errors import UserError, first_line
from optimize.source.files import file_digest
from optimize.source.hf_files import folder_files
from passes.base import TensorSpec

TEXT_GENERATION = "text-generation"
# Where GGUF sources are dequantized, by the file's content, under the run's cache folder.
GGUF_FOLDERS = "gguf_sources"
INSTALL = "pip install 'optimize[llm]'"


def causal_lm_architectures() -> set[str]:
    """The model classes transformers generates text with (LlamaForCausalLM,
    GPT2LMHeadModel, …)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return {name for names in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values() for name in _all(names)}


def _all(names: str | tuple[str, ...]) -> tuple[str, ...]:
    return (names,) if isinstance(names, str) else tuple(names)


def folder_architectures(folder: Path) -> list[str]:
    """The architectures a folder's config.json names; empty when it names none."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{folder}/config.json cannot be read ({first_line(exc)})") from None
    return list(config.get("architectures") or [])


def generates_text(folder: Path, task: str | None) -> bool:
    """Whether a model folder is loaded as a causal LM: `--task text-generation`, or no task
    and an architecture transformers generates text with."""
    if task is not None:
        return task == TEXT_GENERATION
    try:
        known = causal_lm_architectures()
    except ImportError:
        return False
    return any(name in known for name in folder_architectures(folder))


def check_causal_lm_folder(folder: Path) -> None:
    """A UserError unless the folder holds a causal LM head and a tokenizer."""
    try:
        known = causal_lm_architectures()
    except ImportError:
        raise UserError(
            f"{folder} is a language model, which needs transformers: {INSTALL}"
        ) from None
    named = folder_architectures(folder)
    if not any(name in known for name in named):
        raise UserError(
            f"{folder} holds {', '.join(named) or 'a model with no architecture'}, which has no "
            "causal-LM head to generate text with: give a *ForCausalLM checkpoint, or another "
            "--task"
        )
    if not any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        raise UserError(
            f"{folder} has no tokenizer (tokenizer.json): save the tokenizer beside the model "
            "with tokenizer.save_pretrained(folder)"
        )


def dequantized_folder(gguf: Path, cache_dir: Path) -> Path:
    """The GGUF file's model as a Hugging Face folder with its tokenizer, dequantized to
    float32 by transformers; made once per file content under `cache_dir`."""
    digest = file_digest([gguf])[:16]
    folder = cache_dir / GGUF_FOLDERS / digest
    if (folder / "config.json").is_file():
        return folder
    try:
        import transformers
    except ImportError:
        raise UserError(
            f"{gguf.name} is a GGUF file, which needs transformers: {INSTALL}"
        ) from None
    from optimize.store import publish_dir, staging_dir

    try:
        # Reading a GGUF imports torchao, and converting it draws a progress bar of its own.
        with quietly():
            model = transformers.AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, local_files_only=True
            )
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                gguf.parent, gguf_file=gguf.name, local_files_only=True
            )
    except (ImportError, OSError, ValueError, KeyError, RuntimeError) as exc:
        raise UserError(
            f"{gguf.name}: transformers cannot read this GGUF ({first_line(exc)}): give the "
            "model as a Hugging Face folder"
        ) from None
    # A model read from GGUF is marked quantized, and save_pretrained refuses it: a plain
    # model of the same class takes its (dequantized) weights.
    plain = type(model)(model.config)
    plain.load_state_dict(model.state_dict())
    plain.config.quantization_config = None
    if hasattr(plain.config, "quantization_config"):
        del plain.config.quantization_config
    staging = staging_dir(folder.parent, digest)
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    publish_dir(staging, folder)
    return folder


def token_inputs() -> list[TensorSpec]:
    """What a causal LM's candidates take: rows of token ids."""
    return [TensorSpec("input_ids", ("batch", "sequence"), "int64")]


def causal_lm_digest(folder: Path) -> str:
    """The content id of a model folder."""
    return file_digest(folder_files(folder))
