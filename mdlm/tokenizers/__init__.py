"""Tokenizers: text (BPE) here; image (VQ) in ``mdlm.tokenizers.image``."""

from .text import ensure_special_tokens, gpt2_tokenizer, load_tokenizer, padded_vocab_size, train_bpe

__all__ = ["ensure_special_tokens", "gpt2_tokenizer", "load_tokenizer", "padded_vocab_size", "train_bpe"]
