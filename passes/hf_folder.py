"""What a Hugging Face causal-LM folder holds, as the export passes need it: its config,
its architecture, and the input widths of its linear layers."""

from __future__ import annotations

import json
from pathlib import Path

from passes.base import PassError


def hf_config(folder: Path) -> dict[str, object]:
    """The folder's config.json; a PassError when `folder` is not a model folder."""
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        raise PassError(f"{folder} is not a Hugging Face model folder: it has no config.json")
    return json.loads(config_file.read_text())


def architecture(config: dict[str, object]) -> str:
    """The model class the folder was saved from, e.g. 'LlamaForCausalLM'."""
    names = config.get("architectures") or [str(config.get("model_type", "unknown"))]
    return str(names[0])


def linear_input_widths(config: dict[str, object]) -> dict[str, int]:
    """The reduction widths of the decoder's linear layers by the config field that sets
    them: the hidden size (attention and MLP inputs), the MLP's inner size (its output
    projection) and the attention heads' total width (the attention output projection)."""
    hidden = int(config.get("hidden_size") or config.get("n_embd") or 0)
    inner = config.get("intermediate_size") or config.get("n_inner") or 4 * hidden
    widths = {"hidden_size": hidden, "intermediate_size": int(inner)}
    heads = config.get("num_attention_heads") or config.get("n_head")
    head_dim = config.get("head_dim")
    if heads and head_dim:
        widths["num_attention_heads x head_dim"] = int(heads) * int(head_dim)
    return {name: width for name, width in widths.items() if width}


def largest_dividing_group(widths: dict[str, int], at_most: int) -> int | None:
    """The largest power-of-two group size of at least 16 and at most `at_most` that
    divides every width; None when there is none."""
    size = at_most
    while size >= 16:
        if all(width % size == 0 for width in widths.values()):
            return size
        size //= 2
    return None
