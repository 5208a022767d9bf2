"""Randomly initialised models of the benchmark sizes (speed does not depend on the weights): this project's
MDM transformer or HF ModernBERT of equal width, depth and FFN size, GPT-2's padded vocabulary. Shared by
eval/bench_train.py and eval/profile_gpu.py."""

from __future__ import annotations

from transformers import AutoConfig, AutoModelForMaskedLM

from ..modeling import MDLMConfig, MDLMForMaskedLM

# hidden size, layers, heads, FFN size; tiny: smoke tests
SIZES = {"tiny": (64, 2, 2, 128), "125m": (768, 12, 12, 2048), "350m": (1024, 24, 16, 2816)}
VOCAB, MASK = 50304, 50258  # GPT-2's vocabulary padded to a multiple of 64; a [MASK] id inside it


def build(kind: str, size: str, seq: int):
    """A random ``kind`` (\"mdlm\" or \"modernbert\") model of ``size`` (a key of SIZES) for ``seq`` positions."""
    d, L, H, ff = SIZES[size]
    if kind == "mdlm":
        cfg = MDLMConfig(vocab_size=VOCAB, hidden_size=d, num_hidden_layers=L, num_attention_heads=H,
                         intermediate_size=ff, max_position_embeddings=seq, mask_token_id=MASK)
        cfg._attn_implementation = "sdpa"
        return MDLMForMaskedLM(cfg)
    cfg = AutoConfig.for_model("modernbert", vocab_size=VOCAB, hidden_size=d, num_hidden_layers=L,
                               num_attention_heads=H, intermediate_size=ff, max_position_embeddings=seq,
                               pad_token_id=50257, mask_token_id=MASK)
    return AutoModelForMaskedLM.from_config(cfg, attn_implementation="sdpa")
