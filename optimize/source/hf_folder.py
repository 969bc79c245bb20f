"""Hugging Face model folders, as save_pretrained writes them: the model for a task loaded
with transformers from the folder alone (never the network), wrapped so that it takes its
text inputs as positional tensors and returns one tensor, and its input spec. Imported
only for such folders: it imports torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from optimize.config.input_flags import InputFlag
from optimize.errors import UserError, first_line
from passes.base import TensorSpec

# Task -> the transformers Auto class that loads it, the output the model returns, and the
# ending of the architectures whose checkpoints carry that task's head.
TASKS = {
    "feature-extraction": ("AutoModel", "last_hidden_state", ""),
    "text-classification": (
        "AutoModelForSequenceClassification",
        "logits",
        "ForSequenceClassification",
    ),
    "token-classification": ("AutoModelForTokenClassification", "logits", "ForTokenClassification"),
    "fill-mask": ("AutoModelForMaskedLM", "logits", "ForMaskedLM"),
}
# Text inputs in the order the wrapper's forward() takes them.
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# The sequence length inputs are made and measured at, unless --input says otherwise; the
# export takes any length.
DEFAULT_SEQUENCE = 128
# The name of the dynamic sequence dim.
SEQUENCE = "sequence"
# Sample rows of text inputs kept with the model: as many as a run generates without data
# (optimize.data.inputs.GENERATED_SAMPLES), so they stand in for all of them.
SAMPLE_ROWS = 64


def load_hf_folder(folder: Path, task: str | None):
    """The folder's model for `task` (by default the one its config's architecture names),
    wrapped (see TaskModel), and the names of the text inputs it takes, in order."""
    try:
        import transformers
    except ImportError:
        raise UserError(
            f"{folder} is a Hugging Face model folder, which needs transformers: "
            "pip install 'optimize[hf]'"
        ) from None
    try:
        config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"{folder}/config.json cannot be read by transformers ({first_line(exc)})"
        ) from None
    architectures = list(getattr(config, "architectures", None) or [])
    task = task or default_task(architectures)
    if task not in TASKS:
        raise UserError(f"--task {task}: use one of {', '.join(TASKS)}")
    auto_class, output, head = TASKS[task]
    if head and not any(a.endswith(head) for a in architectures):
        raise UserError(
            f"{folder} holds {', '.join(architectures) or 'a model'} with no {task} head "
            f"(an untrained one would be made up): pass --task feature-extraction, or a "
            f"checkpoint trained for {task}"
        )
    try:
        model = getattr(transformers, auto_class).from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(
            f"{folder}: transformers cannot load it for {task} ({first_line(exc)})"
        ) from None
    names = _text_inputs(model)
    if "input_ids" not in names:
        raise UserError(
            f"{folder} holds a model that takes no text inputs (no input_ids): "
            "only text models are read from folders; save it with torch.export.save and pass "
            "the .pt2"
        )
    return TaskModel(model.eval(), output, names).eval(), names, config


def default_task(architectures: list[str]) -> str:
    """The task whose head the checkpoint's architecture carries; feature extraction for a
    bare encoder."""
    for task, (_, _, head) in TASKS.items():
        if head and any(a.endswith(head) for a in architectures):
            return task
    return "feature-extraction"


def input_specs(names: list[str], config, flags: list[InputFlag]) -> tuple[list[TensorSpec], int]:
    """int64 (batch, sequence) for each text input, both dynamic, and the sequence length
    inputs are made and measured at: DEFAULT_SEQUENCE (less when the model has fewer
    positions). An --input flag with a whole-number sequence fixes it at that length
    instead; every input takes the same."""
    given = [f.spec.dims[1] for f in flags if len(f.spec.dims) == 2]
    if len(given) != len(flags) or len({type(d) for d in given}) > 1:
        raise UserError(
            f"--input {flags[0].spec.name}: give (batch, sequence), the sequence a whole "
            f"number or a name, the same for every input, e.g. {flags[0].spec.name}:batch,128:int64"
        )
    positions = getattr(config, "max_position_embeddings", None) or DEFAULT_SEQUENCE
    fixed = given[0] if given and isinstance(given[0], int) else None
    length = fixed or min(DEFAULT_SEQUENCE, positions)
    if length > positions:
        raise UserError(
            f"--input: a sequence of {length} is longer than the model's {positions} positions"
        )
    sequence = fixed or (given[0] if given else SEQUENCE)
    return [TensorSpec(name, ("batch", sequence), "int64") for name in names], length


def index_limits(config, names: list[str]) -> dict[str, int]:
    """{input: how many ids its embedding has} for token ids and segment ids."""
    sizes = {
        "input_ids": getattr(config, "vocab_size", None),
        "token_type_ids": getattr(config, "type_vocab_size", None),
    }
    return {name: int(sizes[name]) for name in names if sizes.get(name)}


def text_samples(
    config, names: list[str], length: int, count: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """`count` rows of `length` tokens for the text inputs `names`, as a tokenizer would
    give them: token ids drawn over the whole vocabulary up to a random length, padding
    after it, the attention mask saying so, one segment. Generic generated integers (0 or
    1) would judge a language model on two tokens."""
    rng = np.random.default_rng(seed)
    vocabulary = int(getattr(config, "vocab_size", None) or 2)
    pad = int(getattr(config, "pad_token_id", None) or 0)
    used = rng.integers(max(1, length // 4), length + 1, size=count)
    mask = (np.arange(length)[None, :] < used[:, None]).astype(np.int64)
    ids = np.where(mask == 1, rng.integers(0, vocabulary, size=(count, length)), pad)
    made = {
        "input_ids": ids.astype(np.int64),
        "attention_mask": mask,
        "token_type_ids": np.zeros_like(mask),
    }
    return {name: made[name] for name in names}


def _text_inputs(model) -> list[str]:
    import inspect

    accepted = inspect.signature(model.forward).parameters
    return [name for name in TEXT_INPUTS if name in accepted]


class TaskModel(torch.nn.Module):
    """A transformers model taking its text inputs positionally and returning the one
    output its task is about, as the exporter and the timing loop want."""

    def __init__(self, model, output: str, names: list[str]) -> None:
        super().__init__()
        self.model, self.output, self.names = model, output, names

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        given = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
        }
        inputs = {name: given[name] for name in self.names}
        return self.model(**inputs, return_dict=True)[self.output]
