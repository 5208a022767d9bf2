"""Left padding, seen by the model: the key-padding mask attention needs and the position ids that skip
the padding. One definition for the model's forward, the sampler's model calls and the K/V caches."""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def padding_to_attention_mask(attention_mask: Tensor | None) -> Tensor | None:
    """(B, L) 1 = token / 0 = pad → (B, 1, 1, L) bool for SDPA, or None when nothing is padded
    (None lets SDPA pick its flash kernel). A (B, 1, 1, L) bool mask passes through unchanged: callers
    that run many forwards of one canvas (the sampler, CUDA-graph capture) convert once and skip this
    function's host synchronisation."""
    if attention_mask is None:
        return None
    if attention_mask.dim() == 4 and attention_mask.dtype == torch.bool:
        return attention_mask
    am = attention_mask.bool()
    if bool(am.all()):
        return None
    return am[:, None, None, :]


def causal_padding_mask(padding: Tensor, length: int) -> Tensor:
    """(B, 1, 1, L) key-padding mask → (B, 1, L, L): key j visible to query i iff j ≤ i and j is a token;
    every query also sees itself, so a padding row is never fully masked (no NaN from SDPA)."""
    idx = torch.arange(length, device=padding.device)
    causal = idx[None, :] <= idx[:, None]  # (L, L)
    return (padding & causal) | torch.eye(length, dtype=torch.bool, device=padding.device)


def default_position_ids(input_ids: Tensor, attention_mask: Tensor | None) -> Tensor:
    """0, 1, 2, … counted over real tokens, so a left-padded row gets the same positions as unpadded."""
    if attention_mask is None:
        return torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
    return (attention_mask.long().cumsum(dim=1) - 1).clamp_min(0)
