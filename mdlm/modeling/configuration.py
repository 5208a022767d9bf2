"""Configuration of the bidirectional masked-diffusion transformer."""

from __future__ import annotations

from transformers import PretrainedConfig


class MDLMConfig(PretrainedConfig):
    """A LLaMA-shaped encoder (RMSNorm, RoPE, SwiGLU) with full bidirectional attention.

    ``mask_token_id`` is part of the config so a checkpoint alone says what [MASK] is; it must lie
    inside ``vocab_size``. ``vocab_size`` may exceed the tokenizer's length (padded to a multiple of
    64 for fast matmuls); the extra rows are never targets.

    ``block_size``: None = a fully bidirectional MDM; an integer = a block-diffusion model (BD3-LM): trained
    on [x_t ; x_0] with the block-causal mask (``mdlm.modeling.block_diffusion``), decoded block by block with
    an exact K/V cache of the finished blocks (``mdlm.sampling``, ``cache_implementation="block_exact"``).

    ``training_objective`` records how the weights were trained (``mdlm.training.objective``: objective
    kind, schedule, weighting, t_min, masking, …); None for a model that was never trained by a recipe.
    Sizes are checked here, so a bad ``--model_config`` is one clear ValueError.
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
        block_size: int | None = None,
        training_objective: dict | None = None,
        **kwargs,
    ):
        _check_sizes(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
                     num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                     max_position_embeddings=max_position_embeddings)
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
        self.block_size = block_size
        self.training_objective = training_objective
        if block_size is not None:
            _check_sizes(block_size=block_size)
            if is_causal:
                raise ValueError("block_size (block diffusion) and is_causal (the AR baseline) exclude each other")
        if hidden_size % num_attention_heads and head_dim is None:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_attention_heads {num_attention_heads}")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if num_key_value_heads is not None and not (isinstance(num_key_value_heads, int) and num_key_value_heads >= 1):
            raise ValueError(f"num_key_value_heads must be a positive integer, got {num_key_value_heads!r}")
        if mask_token_id is not None and not (isinstance(mask_token_id, int) and 0 <= mask_token_id < vocab_size):
            raise ValueError(f"mask_token_id {mask_token_id} lies outside the vocabulary (size {vocab_size})")
        super().__init__(
            pad_token_id=pad_token_id,
            eos_token_id=eos_token_id,
            bos_token_id=bos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )


def _check_sizes(**sizes) -> None:
    """Every size must be a positive integer (a JSON ``--model_config`` can carry anything)."""
    for name, v in sizes.items():
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
