"""The semi-autoregressive forward mask of certainty-forcing distillation (dParallel, Chen et al. 2025, Sec. 4.1).

A greedy semi-AR decoder (LLaDA's ``generate`` with blocks) fills the generated positions block by block: while
block k is decoded, blocks < k are final and blocks > k are still all [MASK]. Training on a trajectory therefore
draws, per row, one active block k uniformly, keeps the earlier blocks clean, masks every later position and masks
each position of block k with probability t ~ U(0, 1) (at least one), and scores only block k's masked positions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor


@dataclass
class SemiARMask:
    masked: Tensor  # (B, L) bool: positions replaced by [MASK] (active block's draw + every later response position)
    scored: Tensor  # (B, L) bool: the active block's masked positions (the loss positions)
    block: Tensor  # (B,) long: the active block's index within the response


def semi_ar_mask(response: Tensor, block_length: int, t: Tensor, generator: torch.Generator | None = None) -> SemiARMask:
    """Draw the semi-AR mask of each row.

    ``response`` (B, L) bool: the generated positions of each row (those the sampler would fill; they need not be
    contiguous, blocks count over them in order). ``t`` (B,) in [0, 1]: each position of the active block is masked
    with probability t; one position drawn uniformly in the block is always masked, so every row scores ≥ 1 position.
    Raises ``ValueError`` for ``block_length < 1`` or a row without response positions."""
    if block_length < 1:
        raise ValueError(f"block_length must be >= 1, got {block_length}")
    B, L = response.shape
    n_resp = response.sum(1)  # (B,)
    if bool((n_resp == 0).any()):
        raise ValueError("every row needs at least one response position to mask")
    dev = response.device
    offset = response.long().cumsum(1) - 1  # (B, L): index within the response (meaningful where response)
    n_blocks = (n_resp + block_length - 1) // block_length  # (B,)
    k = (torch.rand(B, device=dev, generator=generator) * n_blocks).long().clamp_max(n_blocks - 1)  # (B,)
    blk = torch.div(offset, block_length, rounding_mode="floor")  # (B, L)
    active = response & (blk == k[:, None])  # (B, L)
    future = response & (blk > k[:, None])  # (B, L)
    size = torch.minimum(torch.full_like(n_resp, block_length), n_resp - k * block_length)  # (B,) positions in block k
    j = (torch.rand(B, device=dev, generator=generator) * size).long().clamp_max(size - 1)  # (B,)
    forced = active & (offset == (k * block_length + j)[:, None])  # (B, L): exactly one per row
    drawn = torch.rand(B, L, device=dev, generator=generator) < t[:, None].to(dev)  # (B, L)
    scored = active & (drawn | forced)
    return SemiARMask(masked=scored | future, scored=scored, block=k)
