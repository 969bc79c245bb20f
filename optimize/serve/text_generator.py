"""A language model's pick as text in, text out, for a model server: the prompt encoded by
the tokenizer the pick carries, greedy generation in the pick's runtime under the settings
it was picked with, the new tokens decoded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from hardware.runtimes.generative import GenerativeModel
from optimize.errors import UserError
from optimize.serve.pick_json import ServedPick
from optimize.serve.stream_sweep import NEW_TOKENS, open_pick

PROMPT = "prompt"


class TextGenerator:
    """Callable on {"prompt": strings}, returning [texts]: each prompt answered in turn
    with up to `max_new_tokens` greedy tokens, as the pick generated when it was timed."""

    def __init__(self, model: GenerativeModel, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer

    def __call__(
        self, feeds: dict[str, np.ndarray], max_new_tokens: int = NEW_TOKENS
    ) -> list[np.ndarray]:
        prompts = feeds.get(PROMPT)
        if prompts is None:
            raise ValueError(f"a language model takes one input, {PROMPT!r} (strings)")
        texts = [self.answer(_text(p), max_new_tokens) for p in np.ravel(prompts)]
        return [np.array([t.encode() for t in texts], dtype=object).reshape(prompts.shape)]

    def answer(self, prompt: str, max_new_tokens: int = NEW_TOKENS) -> str:
        """The greedy continuation of `prompt`, decoded without special tokens."""
        ids = self.tokenizer(prompt)["input_ids"]
        if not ids:
            raise ValueError("the prompt encodes to no tokens")
        tokens = self.model.generate(ids, max_new_tokens).tokens
        return self.tokenizer.decode(tokens, skip_special_tokens=True)


def open_text_generator(pick: ServedPick, threads: int | None = None) -> TextGenerator:
    """The pick opened in its runtime (on `threads`, or the threads it was picked with),
    between the tokenizer it carries."""
    if not pick.generative:
        raise UserError(f"{pick.label} does not generate text: serve its tensors instead")
    return TextGenerator(open_pick(pick, threads), load_tokenizer(pick.out_dir / pick.artifact))


def load_tokenizer(artifact: Path) -> Any:
    """The Hugging Face tokenizer a runtime folder carries, or the one inside a GGUF file."""
    from transformers import AutoTokenizer

    if artifact.is_file():
        return AutoTokenizer.from_pretrained(
            artifact.parent, gguf_file=artifact.name, local_files_only=True
        )
    return AutoTokenizer.from_pretrained(artifact, local_files_only=True)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
