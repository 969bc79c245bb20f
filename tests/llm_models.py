"""Tiny random-weight causal language models (Llama, Qwen2, GPT-2) saved as Hugging Face
folders with a BPE tokenizer trained offline, and their exports, each built once."""

from __future__ import annotations

import shutil
from pathlib import Path

from hardware.targets import Target
from passes.base import Outcome, Pass, PassContext

KINDS = ("llama", "qwen2", "gpt2")
VOCAB = 512
CPU = Target("cpu")

TEXT = """The river runs past the old mill, where the miller keeps his stones and his accounts.
Every morning the farmers bring grain in carts, and every evening they carry flour home.
A small model learns the words of a few sentences, and a tokenizer learns their pieces.
The lighthouse keeper counts the ships that pass, writes their names in a book, and
sleeps when the fog rolls in from the sea. Children run along the harbour wall at noon.
Numbers like 1, 2, 3 and 1024 appear in the ledger beside the names of the boats.
The baker wakes before dawn, kneads the dough, and sells warm bread to the fishermen.
On market days the square fills with voices, carts, horses and the smell of apples."""


def train_tokenizer():
    """A byte-level BPE trained on TEXT, wrapped as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(TEXT.splitlines() * 4, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )


def save_tiny_lm(kind: str, folder: Path) -> Path:
    """A random-weight `kind` model (hidden 64, 2 layers, 256 positions) and the tokenizer,
    saved with save_pretrained into `folder`. Weights are drawn wider than the default so
    that the next-token distribution is peaked, as a trained model's is: greedy decoding
    is then stable across float runtimes and int4 visibly moves the perplexity."""
    import torch
    import transformers

    common = {"vocab_size": VOCAB, "bos_token_id": 1, "eos_token_id": 2, "initializer_range": 0.1}
    if kind == "gpt2":
        config = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, n_positions=256, **common)
        model_class = transformers.GPT2LMHeadModel
    else:
        sizes = {
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 256,
            # Qwen2's small models share the embedding with the head, as GPT-2 does.
            "tie_word_embeddings": kind == "qwen2",
        }
        config_class, model_class = {
            "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
            "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
        }[kind]
        config = config_class(**sizes, **common)
    torch.manual_seed(0)
    model = model_class(config).eval()
    model.save_pretrained(folder)
    train_tokenizer().save_pretrained(folder)
    return folder


def add_sentencepiece_vocabulary(folder: Path) -> Path:
    """A sentencepiece tokenizer.model trained on TEXT beside the model: llama.cpp's converter
    reads a Llama vocabulary from it (a BPE it does not know by hash it refuses)."""
    import io

    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(TEXT.splitlines()),
        model_writer=model,
        vocab_size=200,
        model_type="bpe",
        bos_id=1,
        eos_id=2,
        unk_id=0,
        minloglevel=2,
    )
    (folder / "tokenizer.model").write_bytes(model.getvalue())
    return folder


class TinyLanguageModels:
    """The tiny models and their exports under `root`, each made on first use."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._folders: dict[str, Path] = {}
        self._exports: dict[tuple[Pass, str], Outcome] = {}

    def hf(self, kind: str) -> Path:
        """The Hugging Face folder of `kind`."""
        if kind not in self._folders:
            self._folders[kind] = save_tiny_lm(kind, self.root / kind)
        return self._folders[kind]

    def hf_with_sentencepiece(self) -> Path:
        """The Llama folder with a sentencepiece vocabulary beside its tokenizer.json."""
        folder = self.root / "llama-sentencepiece"
        if not folder.exists():
            shutil.copytree(self.hf("llama"), folder)
            add_sentencepiece_vocabulary(folder)
        return folder

    def export(self, pass_: Pass, kind: str) -> Outcome:
        """`pass_` applied to the `kind` folder, once per pass and kind."""
        key = (pass_, kind)
        if key not in self._exports:
            out = self.root / f"{kind}-{len(self._exports)}"
            out.mkdir()
            src = self.hf_with_sentencepiece() if kind == "llama-sentencepiece" else self.hf(kind)
            self._exports[key] = pass_.apply(src, out, PassContext(CPU, []))
        return self._exports[key]

    def token_ids(self, kind: str) -> list[int]:
        """TEXT as the model's tokenizer encodes it."""
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(self.hf(kind))
        return tokenizer(TEXT)["input_ids"]

    def windows(self, kind: str, length: int = 32, count: int = 4) -> list[list[int]]:
        """Fixed perplexity windows of TEXT."""
        from hardware.perplexity import token_windows

        return token_windows(self.token_ids(kind), length, count)

    def prompts(self, kind: str, length: int = 8, count: int = 3) -> list[list[int]]:
        """Prompts of `length` tokens from different places of TEXT."""
        ids = self.token_ids(kind)
        return [ids[i * 20 : i * 20 + length] for i in range(count)]


def assert_served_together(batch, alone: list[list[int]], new_tokens: int) -> None:
    """A batch's generations: each prompt continued as it is alone, every sequence's tokens
    stamped in order after the call started, one step at a time for all of them."""
    assert [g.tokens for g in batch] == alone
    for generation in batch:
        stamps = generation.token_ns
        assert len(stamps) == new_tokens and stamps == sorted(stamps)
        assert generation.start_ns < stamps[0] and stamps == batch[0].token_ns


def write_small_gguf(path: Path, rows: int = 64) -> Path:
    """A GGUF written with the gguf package: one q8_0 tensor (rows x 64) and one float32
    tensor of 64, no model around them."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    weight = np.random.default_rng(0).standard_normal((rows, 64)).astype(np.float32)
    packed = gguf.quants.quantize(weight, gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("blk.0.attn_q.weight", packed, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("output_norm.weight", np.ones(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
