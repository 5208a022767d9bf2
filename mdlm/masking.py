"""Forward (noising) process of masked diffusion and the sampling of diffusion times.

* ``sample_times`` draws t ∈ [t_min, 1] per sequence, optionally antithetic / stratified
  ("low-discrepancy sampler" of MDLM §3.5 / Kingma et al. 2021): one uniform offset u and
  t_i = (u + i) / B, so the B times cover the B strata of [0, 1) exactly once.
* ``mask_tokens`` corrupts x0 → x_t:
    - ``mode="mdm"`` masks every eligible token independently with probability γ(t)
      (MDLM eq. 2, LLaDA eq. 1);
    - ``mode="maskgit"`` masks exactly ⌈N_b · γ(t_b)⌉ of the N_b eligible tokens of row b, chosen
      uniformly (MaskGIT §3.2).
  Positions in ``protected`` (prompt, padding, class token) are never masked: a boolean
  argument, not a special case.
"""

from __future__ import annotations

from typing import Literal

import torch

from .schedules import Schedule

Tensor = torch.Tensor
MaskMode = Literal["mdm", "maskgit"]


def sample_times(
    batch_size: int,
    *,
    t_min: float = 0.0,
    t_max: float = 1.0,
    antithetic: bool = True,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Diffusion times t ∈ [t_min, t_max], shape (B,), float32.

    With ``antithetic`` the B draws are stratified: one shared uniform u, t_i = (u + i)/B,
    then affinely mapped to [t_min, t_max] (each stratum of width 1/B holds exactly one draw).
    """
    if not 0.0 <= t_min < t_max <= 1.0:
        raise ValueError(f"need 0 ≤ t_min < t_max ≤ 1, got t_min={t_min}, t_max={t_max}")
    if antithetic:
        u = torch.rand((), device=device, generator=generator)
        base = (u + torch.arange(batch_size, device=device)) / batch_size  # (B,)
    else:
        base = torch.rand(batch_size, device=device, generator=generator)  # (B,)
    return t_min + (t_max - t_min) * base


def mask_tokens(
    input_ids: Tensor,
    t: Tensor,
    schedule: Schedule,
    mask_id: int,
    *,
    protected: Tensor | None = None,
    mode: MaskMode = "mdm",
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Sample x_t ~ q(x_t | x_0). Returns ``(noisy_ids, masked)`` with masked (B, L) bool.

    input_ids: (B, L) long; t: (B,) times; protected: (B, L) bool, True = never masked.
    """
    B, L = input_ids.shape
    gamma = schedule.gamma(t.to(torch.float32)).to(input_ids.device)  # (B,)
    eligible = torch.ones_like(input_ids, dtype=torch.bool) if protected is None else ~protected.bool()
    u = torch.rand((B, L), device=input_ids.device, generator=generator)  # (B, L)
    if mode == "mdm":
        masked = (u < gamma[:, None]) & eligible
    elif mode == "maskgit":
        n_eligible = eligible.sum(dim=1)  # (B,)
        n_mask = torch.ceil(n_eligible.float() * gamma - 1e-6).long().clamp(min=0)  # (B,)
        n_mask = torch.minimum(n_mask, n_eligible)
        scores = u.masked_fill(~eligible, 2.0)  # protected positions sort last
        rank = scores.argsort(dim=1).argsort(dim=1)  # (B, L): rank of each position
        masked = (rank < n_mask[:, None]) & eligible
    else:
        raise ValueError(f"unknown masking mode {mode!r}; valid: 'mdm', 'maskgit'")
    noisy = input_ids.masked_fill(masked, mask_id)
    return noisy, masked
