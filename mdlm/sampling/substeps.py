"""Sub-steps of the moment sampler: a step's chosen tokens drawn in sequential groups.

The moment sampler (:mod:`.moment`) chooses a step's k positions before it draws their tokens, so the
tokens need not come from one forward: drawn in ``substeps`` groups, each group sees the tokens of the
groups before it — a longer sampling trajectory at the same positions (Hayakawa et al. 2025). The
later groups' logits come from a full forward each (exact) or, with partial caching
(:mod:`mdlm.modeling.partial_cache`), from a forward of the chosen columns only.
"""

from __future__ import annotations

from typing import Callable

import torch

Tensor = torch.Tensor


def substep_groups(logw: Tensor, chosen: Tensor, substeps: int) -> Tensor:
    """Group (0 … substeps − 1) of every chosen position, −1 elsewhere.

    Per row the k chosen positions are ranked by descending ``logw`` (ties → lower column) and split
    into ``substeps`` near-equal consecutive groups: rank r goes to group ⌊r·S/k⌋ (groups are empty
    when k < S). logw (B, W) float, chosen (B, W) bool → (B, W) long.
    """
    key = torch.where(chosen, logw.double(), torch.full_like(logw, float("-inf"), dtype=torch.float64))
    order = torch.argsort(key, dim=-1, descending=True, stable=True)  # (B, W)
    ar = torch.arange(chosen.shape[-1], device=chosen.device).expand_as(order).contiguous()
    ranks = torch.empty_like(order).scatter_(-1, order, ar)  # (B, W)
    k = chosen.sum(-1, keepdim=True).clamp_min(1)  # (B, 1)
    return torch.where(chosen, ranks * substeps // k, torch.full_like(ranks, -1))


def chosen_columns(chosen: Tensor) -> tuple[Tensor, Tensor]:
    """The chosen columns of each row, in ascending order, as a (B, K) index (K = max per-row count;
    shorter rows are padded with some of their other columns), and each chosen position's slot in it.

    chosen (B, W) bool → (idx (B, K) long, slot (B, W) long: idx[b, slot[b, w]] == w where chosen).
    """
    B, W = chosen.shape
    col = torch.arange(W, device=chosen.device)
    key = torch.where(chosen, col, col + W)  # chosen columns first, ascending
    K = max(int(chosen.sum(-1).max()), 1)
    idx = torch.argsort(key, dim=-1)[:, :K]  # (B, K)
    slot = chosen.long().cumsum(-1) - 1  # (B, W)
    return idx, slot


def draw_in_groups(x: Tensor, logw: Tensor, chosen: Tensor, tokens_w: Tensor, substeps: int, lo: int, hi: int,
                   logits_at: Callable[..., Tensor], draw: Callable[[Tensor], Tensor]) -> Tensor:
    """Window tokens (B, W) of a step's ``chosen`` positions, drawn in ``substeps`` groups.

    Group 0 keeps ``tokens_w`` (drawn from the step's forward); each later group g is redrawn with ``draw``
    from ``logits_at(xs, sel, idx, slot)`` — the processed logits (Ms, V) at its positions ``sel`` of the
    canvas ``xs`` that holds the tokens of groups < g (``idx``, ``slot``: :func:`chosen_columns`, absolute).
    x (B, L), logw (B, W), chosen (B, W) bool, tokens_w (B, W) long."""
    groups = substep_groups(logw, chosen, substeps)  # (B, W)
    xs = x.clone()
    xs[:, lo:hi] = torch.where(groups == 0, tokens_w, xs[:, lo:hi])
    idx, slot = chosen_columns(chosen)  # (B, K), (B, W)
    for g in range(1, substeps):
        sel = groups == g  # (B, W)
        sel_idx = sel.nonzero(as_tuple=True)
        if sel_idx[0].numel() == 0:
            continue
        new = draw(logits_at(xs, sel_idx, idx + lo, slot))  # (Ms,)
        tokens_w = tokens_w.index_put(sel_idx, new)
        xs[:, lo:hi] = torch.where(sel, tokens_w, xs[:, lo:hi])
    return tokens_w


__all__ = ["chosen_columns", "draw_in_groups", "substep_groups"]
