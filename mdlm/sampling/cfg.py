"""Classifier-free guidance for masked diffusion (Ho & Salimans 2022; as used by LLaDA and eMIGM).

Unconditional input: the condition positions (``cond_mask``: prompt tokens, an image's class token)
are replaced by [MASK] — the model was trained with the condition dropped that way ("CFG with mask").

Guided logits:      ℓ = c + s·(c − u)         (c, u: conditional / unconditional logits)
This is LLaDA's ``u + (s+1)(c − u)``; eMIGM/MAR write ``u + w(c − u)``, so w = s + 1 (eMIGM's
``--cfg 4`` is ``cfg_scale=3``). s = 0 is exactly no guidance, and the unconditional pass is skipped.

Guidance interval ``cfg_interval=(lo, hi)``: guide a row at a step only when lo < τ ≤ hi, where τ is
  * ``cfg_time="masked"`` (default): the fraction of the row's generated positions that are still
    masked *before* the step (1 at the start, → 0 at the end), per row;
  * ``cfg_time="schedule"``: eMIGM's convention — their code guides a step iff
    ``cfg_t_min < s ≤ cfg_t_max`` where s is the time *after* the step on the grid
    ``linspace(1, ε, steps+1)``; we use s = max(1 − (i+1)/steps_in_block, 1e-5).
Both are "time running from 1 (all masked) to 0 (clean)", so eMIGM's "guide only in the later stage"
is an interval near 0, e.g. (0.1, 0.3]. The two differ through the schedule: under eMIGM's exp
schedule the masked fraction is γ(s), not s. The default (0, 1) guides every step.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor

SCHEDULE_TIME_EPS = 1e-5


def schedule_time_after(step_in_block: int, steps_in_block: int) -> float:
    """eMIGM-style time after step i of S: max(1 − (i+1)/S, ε)."""
    return max(1.0 - (step_in_block + 1) / steps_in_block, SCHEDULE_TIME_EPS)


def cfg_active(cfg_time: str, interval: tuple[float, float], masked_fraction: Tensor,
               schedule_time: float) -> Tensor:
    """Rows to guide at this step. masked_fraction (B,) float → (B,) bool."""
    lo, hi = interval
    if cfg_time == "schedule":
        on = lo < schedule_time <= hi
        return torch.full(masked_fraction.shape, on, dtype=torch.bool, device=masked_fraction.device)
    return (masked_fraction > lo) & (masked_fraction <= hi)


def unconditional_input(x: Tensor, cond_mask: Tensor, mask_id: int) -> Tensor:
    """The canvas with every condition position replaced by [MASK]. (B, L) → (B, L)."""
    return x.masked_fill(cond_mask, mask_id)


def guide(cond: Tensor, uncond: Tensor, scale: float, rows: Tensor) -> Tensor:
    """ℓ = c + s·(c − u) where ``rows`` is True, c elsewhere.

    cond/uncond (N, ..., V); rows (N,) bool, broadcast over the trailing dims."""
    guided = cond + scale * (cond - uncond)
    return torch.where(rows.reshape(rows.shape + (1,) * (cond.dim() - rows.dim())), guided, cond)
