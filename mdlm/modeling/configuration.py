"""Configuration of the bidirectional masked-diffusion transformer."""

from __future__ import annotations

from transformers import PretrainedConfig


class MDLMConfig(PretrainedConfig):
    """A LLaMA-shaped encoder (RMSNorm, RoPE, SwiGLU) with full bidirectional attention.

    ``mask_token_id`` is part of the config so a checkpoint alone says what [MASK] is; it must lie
    inside ``vocab_size``. ``vocab_size`` may exceed the tokenizer's length (padded to a multiple of
    64 for fast matmuls); the extra rows are never targets.
    """

    model_type = "mdlm"

    def __init__(
        self,
        vocab_size: int = 50304,
        hidden_size: int = 768,
        intermediate_size: int = 2048,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        num_key_value_heads: int | None = None,
        head_dim: int | None = None,
        max_position_embeddings: int = 1024,
        rope_theta: float = 10000.0,
        rms_norm_eps: float = 1e-6,
        initializer_range: float = 0.02,
        attention_dropout: float = 0.0,
        hidden_dropout: float = 0.0,
        tie_word_embeddings: bool = True,
        mask_token_id: int | None = None,
        pad_token_id: int | None = None,
        eos_token_id: int | None = None,
        bos_token_id: int | None = None,
        is_causal: bool = False,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads or num_attention_heads
        self.head_dim = head_dim or hidden_size // num_attention_heads
        self.max_position_embeddings = max_position_embeddings
        self.rope_theta = rope_theta
        self.rms_norm_eps = rms_norm_eps
        self.initializer_range = initializer_range
        self.attention_dropout = attention_dropout
        self.hidden_dropout = hidden_dropout
        self.mask_token_id = mask_token_id
        self.is_causal = is_causal  # True only for the autoregressive baseline of eval/
        if hidden_size % num_attention_heads and head_dim is None:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if mask_token_id is not None and not 0 <= mask_token_id < vocab_size:
            raise ValueError(f"mask_token_id {mask_token_id} lies outside the vocabulary (size {vocab_size})")
        super().__init__(
            pad_token_id=pad_token_id,
            eos_token_id=eos_token_id,
            bos_token_id=bos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )
