"""Block diffusion (BD3-LM, Arriola et al. 2025): the attention masks and the one-pass training forward.

A sequence of L tokens is cut into blocks of ``block_size`` tokens. The model is trained on the concatenation
[x_t ; x_0] (length 2L) in ONE forward with the block-causal mask (BD3-LM §3.2, "vectorised training"):

* query in x_t block b  → keys of x_t block b (bidirectional) and of x_0 blocks < b (the clean context);
* query in x_0 block b  → keys of x_0 blocks ≤ b (block-causal; these K/V are what decoding caches).

Both copies carry the same position ids, so the clean K/V a noisy block sees in training are exactly the K/V
a decoder has cached for the clean prefix (``decode_block_mask`` and ``mdlm.sampling.cached_calls``).

Masks are boolean, True = the key is visible (SDPA's convention); every query also sees itself, so a padding
query never has an empty row (no NaN that could leak through a masked value).
"""

from __future__ import annotations

import torch

from .padding import default_position_ids

Tensor = torch.Tensor


def block_causal_mask(length: int, block_size: int, device: torch.device | str = "cpu") -> Tensor:
    """BD3-LM's training mask over [x_t ; x_0]: (2L, 2L) bool, True = key visible to the query.

    Columns / rows 0..L-1 are x_t, L..2L-1 are x_0; the block of position i is ``i // block_size``."""
    if length % block_size:
        raise ValueError(f"block_size {block_size} does not divide the sequence length {length}")
    blk = torch.arange(length, device=device) // block_size  # (L,)
    q, k = blk[:, None], blk[None, :]  # (L, 1), (1, L)
    noisy_noisy = q == k  # (L, L) x_t block b ↔ x_t block b
    noisy_clean = k < q  # (L, L) x_t block b → x_0 blocks < b
    clean_noisy = torch.zeros_like(noisy_noisy)  # (L, L) x_0 never sees x_t
    clean_clean = k <= q  # (L, L) x_0 block-causal
    top = torch.cat([noisy_noisy, noisy_clean], dim=1)  # (L, 2L)
    bottom = torch.cat([clean_noisy, clean_clean], dim=1)  # (L, 2L)
    return torch.cat([top, bottom], dim=0)  # (2L, 2L)


def with_key_padding(mask: Tensor, keys: Tensor | None) -> Tensor:
    """(Q, K) or (B, 1, Q, K) mask & key padding (B, K) bool → (B, 1, Q, K); the diagonal of the last Q
    key columns stays visible (a query always sees itself)."""
    m = mask if mask.dim() == 4 else mask[None, None]  # (B|1, 1, Q, K)
    if keys is not None:
        m = m & keys.bool()[:, None, None, :]
    Q, K = m.shape[-2:]
    self_key = torch.arange(Q, device=m.device)[:, None] + (K - Q) == torch.arange(K, device=m.device)[None, :]
    return m | self_key  # (B, 1, Q, K)


def bd3_training_inputs(noisy: Tensor, clean: Tensor, attention_mask: Tensor | None,
                        block_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """The one-forward training input of BD3-LM. noisy, clean (B, L) → ids (B, 2L), mask (B|1, 1, 2L, 2L) bool,
    position_ids (B, 2L) (the x_0 copy repeats x_t's positions). ``attention_mask`` (B, L): 0 = padding."""
    L = noisy.shape[1]
    pos = default_position_ids(noisy, attention_mask)  # (B, L)
    mask = block_causal_mask(L, block_size, noisy.device)  # (2L, 2L)
    keys = None if attention_mask is None else attention_mask.bool().repeat(1, 2)  # (B, 2L)
    ids = torch.cat([noisy, clean], dim=1)  # (B, 2L)
    return ids, with_key_padding(mask, keys), torch.cat([pos, pos], dim=1)


def bd3_logits(model: torch.nn.Module, noisy: Tensor, clean: Tensor, attention_mask: Tensor | None, block_size: int,
               positions: Tensor | None = None) -> Tensor:
    """p_θ(x0 | x_t block, clean blocks before it) for every x_t position: (B, L, V), or (M, V) at ``positions``
    (B, L) bool (row-major), in one forward over [x_t ; x_0]. ``model``: an ``MDLMForMaskedLM``."""
    ids, mask, pos = bd3_training_inputs(noisy, clean, attention_mask, block_size)
    if positions is None:
        return model(input_ids=ids, attention_mask=mask, position_ids=pos,
                     logits_positions=slice(0, noisy.shape[1])).logits  # (B, L, V)
    sel = torch.cat([positions, torch.zeros_like(positions)], dim=1)  # (B, 2L): x_t positions only
    return model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_positions=sel).logits  # (M, V)


def position_block_mask(position_ids: Tensor, block_size: int, keys: Tensor | None) -> Tensor:
    """A plain forward of a block-diffusion model over one canvas: key j visible to query i iff
    block(j) ≤ block(i), blocks = position // block_size (the x_0 stream's mask of training).
    position_ids (B, L), keys (B, L) bool or None → (B, 1, L, L) bool."""
    blk = torch.div(position_ids, block_size, rounding_mode="floor")  # (B, L)
    m = (blk[:, None, :, None] >= blk[:, None, None, :])  # (B, 1, L, L)
    return with_key_padding(m, keys)


def block_ends(columns: Tensor, start: int, block_size: int) -> Tensor:
    """Decoding: the column after the end of each column's block, blocks of ``block_size`` aligned at the first
    generated column ``start`` (the prompt is cut into clean blocks backwards from it). (Q,) long → (Q,) long."""
    return start + (torch.div(columns - start, block_size, rounding_mode="floor") + 1) * block_size


def decode_block_mask(first: int, hi: int, start: int, block_size: int, keys: Tensor | None,
                      device: torch.device | str = "cpu") -> Tensor:
    """Mask of a decoding forward of columns [first, hi) (clean blocks, then the current block ending at ``hi``)
    over keys [0, hi): key k visible to query q iff k < end of q's block (and k is not padding). This is
    BD3-LM's mask restricted to [clean prefix ; current block]. keys (B, ≥hi) bool or None → (B|1, 1, Q, hi)."""
    q = torch.arange(first, hi, device=device)  # (Q,)
    end = block_ends(q, start, block_size).clamp(max=hi)  # (Q,)
    m = torch.arange(hi, device=device)[None, :] < end[:, None]  # (Q, hi)
    return with_key_padding(m, None if keys is None else keys[:, :hi])
