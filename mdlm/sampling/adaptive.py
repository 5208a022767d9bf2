"""Adaptive parallel commits: how many of a block's masked positions one step may commit (pure, fixed-shape).

Every function works on the block window (B, W) with a ``masked`` mask and returns per-row counts or commit masks
without host synchronisation, so the greedy step that uses them can be captured in a CUDA graph.

* Fast-dLLM's **factor** rule (Wu et al. 2025, "Fast-dLLM", factor-based parallel decoding): with the masked
  positions' confidences sorted c_(1) ≥ c_(2) ≥ …, commit the n most confident where n is the largest count with (n + 1)·(1 − c_(n)) < f
  (at least one). (n + 1)(1 − c_(n)) grows with n, so the admissible counts are a prefix.
* The **entropy-bounded** rule (EB-sampler, Ben-Hamu et al. 2025, arXiv 2505.24857): sort the masked positions
  by the error proxy, the entropy H_i of p_i, ascending; commit the largest prefix U = {(1) … (k)} with
      Σ_{i∈U} H_i − max_{i∈U} H_i ≤ γ,
  k ≥ 1. The left side bounds the mutual information between the committed tokens (their joint error).
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def prefix_count(ok: Tensor) -> Tensor:
    """(B, K) bool, ordered → (B,) long: length of each row's leading run of True."""
    return ok.long().cumprod(dim=-1).sum(dim=-1)


def factor_count(err: Tensor, masked: Tensor, factor: float) -> Tensor:
    """Fast-dLLM's factor rule: per row the largest n with (n + 1)·(1 − c_(n)) < ``factor``, at least one.

    err (B, W) float: 1 − confidence of each position's token (pass it computed as the mass of the other tokens
    when confidences round to 1); masked (B, W) bool. Returns (B,) long (0 for a row with nothing masked)."""
    e = torch.where(masked, err.double(), torch.full_like(err, float("inf"), dtype=torch.float64))  # (B, W)
    e_sorted = e.sort(dim=-1).values  # (B, W) ascending error = descending confidence
    n = torch.arange(1, e.shape[-1] + 1, device=e.device, dtype=torch.float64)  # (W,)
    n_ok = prefix_count((n + 1.0) * e_sorted < float(factor))  # (B,)
    return torch.maximum(n_ok, masked.any(dim=-1).long())


def entropy(logits: Tensor) -> Tensor:
    """Entropy H(p) of p = softmax(logits) in float64 (suppressed ids at −inf contribute 0). (..., V) → (...)."""
    logp = torch.log_softmax(logits.double(), dim=-1)
    return -torch.where(logp > float("-inf"), logp.exp() * logp, torch.zeros_like(logp)).sum(dim=-1)


def entropy_bounded_count(ent: Tensor, masked: Tensor, gamma: float) -> Tensor:
    """EB-sampler: per row the largest k with Σ_{j≤k} H_(j) − max_{j≤k} H_(j) ≤ γ over the masked positions sorted
    by ascending entropy (k ≥ 1 where anything is masked). ent (B, W) float, masked (B, W) bool → (B,) long."""
    h = torch.where(masked, ent.double(), torch.full_like(ent, float("inf"), dtype=torch.float64))  # (B, W)
    h_sorted = h.sort(dim=-1).values  # (B, W) ascending; unmasked (inf) last
    finite = torch.isfinite(h_sorted)
    h0 = torch.where(finite, h_sorted, torch.zeros_like(h_sorted))
    cost = h0.cumsum(dim=-1) - h0.cummax(dim=-1).values  # (B, W): Σ − max of each prefix
    k = prefix_count(finite & (cost <= float(gamma)))
    return torch.maximum(k, masked.any(dim=-1).long())


def entropy_bounded_budget(ent: Tensor, commit: Tensor) -> Tensor:
    """Σ H − max H over each row's committed positions (the quantity the EB rule bounds by γ). (B, W) → (B,)."""
    h = torch.where(commit, ent.double(), torch.zeros_like(ent, dtype=torch.float64))
    return h.sum(dim=-1) - h.max(dim=-1).values


def eos_early_fill(x: Tensor, gen: Tensor, mask_id: int, window: Tensor, masked: Tensor, tok: Tensor,
                   eos_id: int, stop_ids: Tensor) -> Tensor:
    """EOS-aware early block termination: the (B, L) masked positions to fill with EOS now.

    Per row, with the step's predicted tokens ``tok`` (B, W) at the block's ``masked`` (B, W) positions (``window``
    (W,) long: their canvas columns, contiguous):
    (a) every masked position of the block is predicted EOS or pad (``stop_ids``) → the block and every masked
        generated position after it are filled (the row's text has ended);
    (b) else, after the row's first committed EOS (a generated position up to the window's end), every masked position of
        the block right of it is predicted EOS/pad → every masked generated position right of that EOS is filled
        (positions left of it keep decoding; positions after the block are not looked at).
    x (B, L) long (read only), gen (B, L) bool."""
    L = x.shape[1]
    col = torch.arange(L, device=x.device)  # (L,)
    wcol = window  # (W,)
    stop_w = torch.isin(tok, stop_ids) & masked  # (B, W)
    all_stop = masked.any(dim=-1) & (stop_w == masked).all(dim=-1)  # (B,) rule (a)
    first_masked = torch.where(masked, wcol, L).min(dim=-1).values  # (B,)
    eos_col = torch.where(gen & (x == eos_id) & (col <= window[-1]), col, L).min(dim=-1).values  # (B,)
    after = masked & (wcol > eos_col.unsqueeze(-1))  # (B, W) masked block positions right of that EOS
    rule_b = (eos_col < L) & (stop_w | ~after).all(dim=-1)  # (B,)
    start = torch.where(all_stop, first_masked, torch.where(rule_b, eos_col + 1, L))  # (B,) first column filled
    return gen & (x == mask_id) & (col >= start.unsqueeze(-1))
