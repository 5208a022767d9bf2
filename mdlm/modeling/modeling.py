"""Bidirectional transformer for masked diffusion (LLaDA / MDLM backbone), HF-native.

Pre-norm blocks of RMSNorm → attention with RoPE (Su et al. 2021) → RMSNorm → SwiGLU MLP
(Shazeer 2020). Attention is full (no causal mask) and goes through transformers' attention
interface (``config._attn_implementation``: ``sdpa`` by default, ``eager``, ``flash_attention_2``
where installed); padded keys are masked out. Linear layers are named
q_proj/k_proj/v_proj/o_proj/gate_proj/up_proj/down_proj so peft's LoRA finds them.
No time input: the MDM ELBO does not need one (MDLM §3.3, LLaDA §2.1).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput

try:  # transformers ≥ 4.48
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
except ImportError:  # pragma: no cover
    ALL_ATTENTION_FUNCTIONS = {}
try:
    from transformers.modeling_layers import GradientCheckpointingLayer
except ImportError:  # pragma: no cover
    GradientCheckpointingLayer = nn.Module

from .configuration import MDLMConfig
from .block_diffusion import position_block_mask
from .kv_cache import BlockKVCache
from .padding import causal_padding_mask, default_position_ids, padding_to_attention_mask

Tensor = torch.Tensor


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype == self.weight.dtype:  # one kernel: rms_norm accumulates in float32 itself (same values on CPU)
            return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps).to(x.dtype)  # autocast returns float32
        return float32_rms_norm(x, self.weight, self.eps)  # mixed dtypes (autocast over float32 weights)


def float32_rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """RMSNorm computed on float32 copies of ``x`` (..., H) and ``weight`` (H,), returned in ``x``'s dtype."""
    return F.rms_norm(x.float(), (x.shape[-1],), weight.float(), eps).to(x.dtype)


def rope_cos_sin(position_ids: Tensor, head_dim: int, theta: float, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """Rotary tables for the given positions. position_ids (B, L) → cos, sin (B, 1, L, D)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=position_ids.device, dtype=torch.float32) / head_dim)
    freqs = position_ids[..., None].float() * inv_freq  # (B, L, D/2)
    emb = torch.cat([freqs, freqs], dim=-1)  # (B, L, D)
    return emb.cos().to(dtype)[:, None], emb.sin().to(dtype)[:, None]


def rope_tables(max_positions: int, head_dim: int, theta: float) -> tuple[Tensor, Tensor]:
    """cos, sin of every position < ``max_positions``: (P, D) float32 each (rows = :func:`rope_cos_sin`'s).

    The model gathers its rotary angles from these tables instead of computing cos/sin per forward:
    under ``torch.compile`` a per-forward table is inlined into every layer's RoPE kernel and its
    transcendentals recomputed there (≈ 10% of an H100 training step of the 125M config)."""
    cos, sin = rope_cos_sin(torch.arange(max_positions)[None], head_dim, theta, torch.float32)  # (1, 1, P, D)
    return cos[0, 0], sin[0, 0]


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x (B, H, L, D) rotated by RoPE (rotate-half convention)."""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def signed_sin(sin: Tensor) -> Tensor:
    """sin (..., D) with its first half negated: rotate_half(x) · sin = roll(x, D/2) · signed_sin(sin)."""
    half = sin.shape[-1] // 2
    return torch.cat([-sin[..., :half], sin[..., half:]], dim=-1)


def apply_rope_rolled(x: Tensor, cos: Tensor, sin_signed: Tensor) -> Tensor:
    """:func:`apply_rope` with the sign folded into the table (``sin_signed`` = :func:`signed_sin` of sin): the same
    values bit for bit (a negation is exact, so (−x₂)·s = x₂·(−s)), in four elementwise kernels instead of five —
    at batch 1 a decoding step is latency-bound, and RoPE was ~24% of its kernels (docs/benchmarks/decoding.md)."""
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * sin_signed


def select_rows(h: Tensor, logits_positions: Tensor | slice) -> Tensor:
    """Hidden states (B, L, H) at ``logits_positions``, where the LM head runs: a slice of columns → (B, W, H) (the
    sampler's block window); (M,) int64 flat indices b·L + l → (M, H) (no host synchronisation); (B, L) bool →
    (M, H) in row-major order (the training loss's masked positions)."""
    if isinstance(logits_positions, slice):
        return h[:, logits_positions]
    if logits_positions.dtype != torch.bool:
        return h.flatten(0, 1).index_select(0, logits_positions)
    return h[logits_positions]


def eager_attention(module, q, k, v, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """Plain softmax attention. q (B, H, L, D); k, v (B, Hkv, S, D); mask (B, 1, L|1, S) bool."""
    rep = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    scores = torch.matmul(q, k.transpose(2, 3)) * (scaling or q.shape[-1] ** -0.5)  # (B, H, L, S)
    if attention_mask is not None:
        scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
    if getattr(module, "is_causal", False):
        L, S = scores.shape[-2:]
        causal = torch.ones(L, S, dtype=torch.bool, device=q.device).tril(S - L)
        scores = scores.masked_fill(~causal, torch.finfo(scores.dtype).min)
    probs = F.dropout(scores.softmax(dim=-1, dtype=torch.float32).to(q.dtype), p=dropout, training=module.training)
    return torch.matmul(probs, v).transpose(1, 2).contiguous(), probs


class MDLMAttention(nn.Module):
    def __init__(self, config: MDLMConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.head_dim
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.num_key_value_groups = self.num_heads // self.num_kv_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = bool(getattr(config, "is_causal", False))
        h = config.hidden_size
        self.q_proj = nn.Linear(h, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(h, self.num_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(h, self.num_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, h, bias=False)

    def forward(
        self, x: Tensor, cos: Tensor, sin: Tensor, attention_mask: Tensor | None, kv_cache: BlockKVCache | None = None
    ) -> Tensor:
        """x (B, L, H) → (B, L, H); cos, sin (B, 1, L, D) the rotary tables of the columns' positions, sin with its
        first half negated (:func:`signed_sin`, what :func:`apply_rope_rolled` takes). With ``kv_cache`` (block
        decoding, :mod:`.kv_cache`) the fresh K/V of these L columns are stored in / spliced into the cache and the
        queries attend over all of the cache's columns (``attention_mask`` then masks those keys)."""
        B, L, _ = x.shape
        q = self.q_proj(x).view(B, L, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, L, D)
        k = self.k_proj(x).view(B, L, self.num_kv_heads, self.head_dim).transpose(1, 2)  # (B, Hkv, L, D)
        v = self.v_proj(x).view(B, L, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope_rolled(q, cos, sin), apply_rope_rolled(k, cos, sin)  # sin: signed (MDLMModel.forward)
        if kv_cache is not None:
            k, v = kv_cache.update(self.layer_idx, k, v)  # (B, Hkv, S, D), S = cached canvas length
        impl = self.config._attn_implementation or "sdpa"
        fn = eager_attention if impl == "eager" else ALL_ATTENTION_FUNCTIONS[impl]
        out, _ = fn(
            self,
            q,
            k,
            v,
            attention_mask,
            dropout=self.config.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            is_causal=self.is_causal,
        )
        return self.o_proj(out.reshape(B, L, -1))


class MDLMMLP(nn.Module):
    def __init__(self, config: MDLMConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class MDLMBlock(GradientCheckpointingLayer):
    def __init__(self, config: MDLMConfig, layer_idx: int):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = MDLMAttention(config, layer_idx)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MDLMMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self, x: Tensor, cos: Tensor, sin: Tensor, attention_mask: Tensor | None, kv_cache: BlockKVCache | None = None
    ) -> Tensor:
        x = x + self.dropout(self.self_attn(self.input_layernorm(x), cos, sin, attention_mask, kv_cache))
        return x + self.dropout(self.mlp(self.post_attention_layernorm(x)))


class MDLMPreTrainedModel(PreTrainedModel):
    config_class = MDLMConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MDLMBlock"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = False
    _supports_attention_backend = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std)
        elif isinstance(module, RMSNorm):
            module.weight.fill_(1.0)
        elif isinstance(module, MDLMModel):
            c = self.config
            cos, sin = rope_tables(c.max_position_embeddings, c.head_dim, c.rope_theta)
            module.rope_cos.copy_(cos)
            module.rope_sin_signed.copy_(signed_sin(sin))


class MDLMModel(MDLMPreTrainedModel):
    def __init__(self, config: MDLMConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(MDLMBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        cos, sin = rope_tables(config.max_position_embeddings, config.head_dim, config.rope_theta)  # (P, D)
        # not saved: rebuilt from the config (``_init_weights`` refills them after an empty-weight load)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin_signed", signed_sin(sin), persistent=False)  # sin, first half negated
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        kv_cache: BlockKVCache | None = None,
        **kwargs,
    ) -> BaseModelOutput:
        """``kv_cache`` (optional, inference only): see :mod:`mdlm.modeling.kv_cache`. While it is being
        filled the input is the whole canvas; afterwards the input is a slice of columns starting at
        ``kv_cache.fresh_start`` and ``position_ids`` (the slice's) and ``attention_mask`` (the whole
        canvas's, (B, L)) are required."""
        if inputs_embeds is None:
            inputs_embeds = self.embed_tokens(input_ids)  # (B, L, H)
        B, L, _ = inputs_embeds.shape
        if position_ids is None and L > self.config.max_position_embeddings:
            raise ValueError(
                f"sequence length {L} exceeds the model's max_position_embeddings {self.config.max_position_embeddings}"
            )
        sliced = kv_cache is not None and kv_cache.slicing
        if sliced and position_ids is None:
            raise ValueError("a forward over a slice of a KV-cached canvas needs the slice's position_ids")
        if position_ids is None:
            ref = input_ids if input_ids is not None else inputs_embeds[..., 0]
            pad = attention_mask if attention_mask is None or attention_mask.dim() == 2 else None  # 4-D: no pad info
            position_ids = default_position_ids(ref, pad)
        dt = inputs_embeds.dtype
        cos = self.rope_cos[position_ids].to(dt)[:, None]  # (B, 1, L, D), = rope_cos_sin(position_ids, …)
        sin = self.rope_sin_signed[position_ids].to(dt)[:, None]  # (B, 1, L, D), first half negated: apply_rope_rolled
        mask = padding_to_attention_mask(attention_mask)
        block = getattr(self.config, "block_size", None)
        if block and kv_cache is None and (mask is None or mask.shape[-2] == 1):  # no query-wise mask given
            keys = None if mask is None else mask[:, 0, 0]  # (B, L)
            mask = position_block_mask(position_ids, block, keys)  # block diffusion: blocks ≤ own block only
        if mask is not None and getattr(self.config, "is_causal", False):
            mask = causal_padding_mask(mask, L)  # SDPA ignores is_causal once a mask is given
        h = inputs_embeds
        for layer in self.layers:
            h = layer(h, cos, sin, mask) if kv_cache is None else layer(h, cos, sin, mask, kv_cache=kv_cache)
        return BaseModelOutput(last_hidden_state=self.norm(h))


class MDLMForMaskedLM(MDLMPreTrainedModel):
    """The denoiser p_θ(x0 | x_t): logits over the vocabulary at every position."""

    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}
    supports_block_kv_cache = True  # forward(..., kv_cache=BlockKVCache): see mdlm.modeling.kv_cache
    supports_logits_window = True  # forward(..., logits_positions=slice, attention_mask=(B, 1, 1, L) bool)

    def __init__(self, config: MDLMConfig):
        super().__init__(config)
        self.model = MDLMModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def forward(
        self,
        input_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: Tensor | None = None,
        inputs_embeds: Tensor | None = None,
        logits_positions: Tensor | None = None,
        kv_cache: BlockKVCache | None = None,
        **kwargs,
    ) -> MaskedLMOutput:
        """``logits_positions``, optional: (B, L) bool → logits only there, as (M, V) — the training
        loss needs them only at masked positions, which saves most of the LM-head cost; or the same positions as
        (M,) int64 flat indices b·L + l (row-major, as ``mask.flatten().nonzero()``); or a ``slice``
        of columns → (B, W, V), e.g. the sampler's block window (no host synchronisation, unlike a
        boolean index).
        ``kv_cache``: block KV cache for cached semi-autoregressive decoding (Fast-dLLM), see
        :mod:`mdlm.modeling.kv_cache`; None (default) is the plain full forward."""
        if kv_cache is None:
            h = self.model(input_ids, attention_mask, position_ids, inputs_embeds).last_hidden_state  # (B, L, H)
        else:
            h = self.model(input_ids, attention_mask, position_ids, inputs_embeds, kv_cache=kv_cache).last_hidden_state
        return MaskedLMOutput(logits=self.lm_head(h if logits_positions is None else select_rows(h, logits_positions)))
