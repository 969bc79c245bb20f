"""The data stage of a language model: the user's text cut into fixed windows of token ids,
the original's teacher-forced log-probabilities on them (from which every candidate's
perplexity is compared), and the prompts timed runs generate from."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from hardware.detect import distribution_versions
from hardware.generation import NEW_TOKENS, STREAMS
from hardware.perplexity import token_windows
from hardware.runtimes.generative import BOUND_PROMPT
from hardware.runtimes.transformers_lm import TransformersLmRuntime, TransformersLmSettings
from hardware.targets import Target
from optimize.config.sections import DataSection
from optimize.data.eval_cache import eval_set_key, keep_eval_set, load_eval_set
from optimize.data.eval_store import write_eval_store
from optimize.data.inputs import describe_evalset
from optimize.data.prepare import EVAL_FOLDER, RunData
from optimize.errors import UserError
from optimize.source.load import Source

# Perplexity windows: as long as the longest prompt timed (or the model's context, or the
# text, when shorter), at most this many, so every candidate scores the same tokens.
WINDOW = 1024
MAX_WINDOWS = 8
# Fewer tokens than this make a perplexity that says little.
MIN_WINDOW = 16
SAMPLE_TEXT = Path(__file__).with_name("sample_text.txt")


def read_text(path: Path) -> str:
    """The text of a .txt file, or the 'text' fields of a .jsonl file joined by blank
    lines; a UserError when it is missing, empty or not UTF-8."""
    if not path.is_file():
        raise UserError(f"--eval-data {path}: no such file")
    try:
        raw = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(
            f"--eval-data {path} is not UTF-8 text (byte {exc.start}): save it as UTF-8"
        ) from None
    if path.suffix == ".jsonl":
        raw = "\n\n".join(_jsonl_texts(path, raw))
    if not raw.strip():
        raise UserError(f"--eval-data {path} holds no text: give a file of the text you serve")
    return raw


def _jsonl_texts(path: Path, raw: str) -> list[str]:
    texts = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise UserError(f"--eval-data {path} line {number} is not JSON") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise UserError(f"--eval-data {path} line {number} has no 'text' string field")
        texts.append(record["text"])
    return texts


def context_length(folder: Path) -> int:
    """How many positions the model attends to, from its config (WINDOW when unsaid)."""
    config = json.loads((folder / "config.json").read_text())
    for key in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        if isinstance(config.get(key), int):
            return int(config[key])
    return WINDOW


def text_windows(folder: Path, text: str) -> np.ndarray:
    """The text's token ids (by the model's own tokenizer) in consecutive windows,
    [windows, length]."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    ids = tokenizer(text)["input_ids"]
    # A window is also the longest prompt timed: it leaves room for the tokens generated.
    length = min(WINDOW, context_length(folder) - NEW_TOKENS, len(ids))
    if length < MIN_WINDOW:
        raise UserError(
            f"the text is {len(ids)} tokens long: give at least {MIN_WINDOW} tokens of text "
            "to measure perplexity on"
        )
    return np.asarray(token_windows(ids, length, MAX_WINDOWS), dtype=np.int64)


def prepare_text_data(source: Source, data_section: DataSection, out_dir: Path) -> RunData:
    """The user's text (or the bundled sample) as windows of token ids with the original's
    log-probabilities on them, stored under `out_dir` for every measurement to stream; the
    windows double as the prompts timed runs start from and as calibration text."""
    given = Path(data_section.eval) if data_section.eval is not None else None
    text_file = given or SAMPLE_TEXT
    batch = STREAMS
    versions = distribution_versions(("torch", "transformers"))
    key = eval_set_key(
        source.source_id, source.inputs, text_file, batch, [versions, WINDOW, "agreement"]
    )
    folder = out_dir / EVAL_FOLDER / key
    kept = load_eval_set(folder)
    if kept is not None:
        store, described, notes = kept
    else:
        windows = text_windows(source.artifact, read_text(text_file))
        reference = TransformersLmRuntime().open(
            source.artifact, Target("cpu"), TransformersLmSettings(threads=os.cpu_count() or 1)
        )
        batches = [({"input_ids": windows}, windows[:, 1:])]
        store = write_eval_store(folder, batches, batch, reference.run, synthetic=given is None)
        rows, length = windows.shape
        described = f"{text_file.name}: {rows} windows of {length} tokens"
        notes = []
        keep_eval_set(store, described, notes)
    store = dataclasses.replace(store, metric="perplexity")
    warnings = []
    if store.synthetic:
        warnings.append(
            "perplexity is measured on the bundled sample text, not yours: pass --eval-data "
            "with a UTF-8 .txt of the text you serve"
        )
    calibration = store.head(store.samples)
    # The prompt timed runs start from, which serving is benchmarked with.
    prompt = [int(t) for t in calibration["input_ids"][0][:BOUND_PROMPT]]
    return RunData(
        store=store,
        description=describe_evalset(store, described, notes) | {"prompt_ids": prompt},
        calibration=calibration,
        raw_inputs=source.inputs,
        preprocessing=None,
        fixed_batch=None,
        warnings=warnings,
        max_batch=batch,
    )
