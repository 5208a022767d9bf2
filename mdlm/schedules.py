"""Masking schedules γ(t): the probability that a token is masked at diffusion time t ∈ [0, 1].

γ(0) = 0 (clean data) and γ(1) = 1 (all [MASK]). The same objects drive
  * training: the forward process masks each token with probability γ(t) and the ELBO
    weights the cross-entropy by w(t) = γ'(t) / γ(t) (MDLM eq. 10, LLaDA eq. 3 for the linear
    case, where w(t) = 1/t);
  * sampling: after step i of T a canvas of N generated positions keeps
    ``masked_counts(N, T)[i]`` positions masked (MaskGIT eq. 3 with the time reversed).

Schedules (t is the fraction masked in "time", 1 = fully masked):
  linear    γ = t
  cosine    γ = cos(π/2 · (1 − t))                            (MaskGIT's cosine)
  exp       γ = (1 − exp(−5t)) / (1 − exp(−5))                 (eMIGM; normalised so γ(1) = 1)
  log-exp   γ = log(1 + (e^5 − 1) t) / 5                       (eMIGM)
  poly<p>   γ = t^p, e.g. ``poly2`` (MaskGIT "square"), ``poly3`` ("cubic"), ``poly0.5`` ("sqrt")
  arccos    γ = (2/π) · arccos(1 − t)                          (MaskGIT's arccos, time reversed)

The exp schedule as printed in eMIGM, 1 − exp(−5t), ends at γ(1) = 0.9933; we divide by that value
so that t = 1 is the all-[MASK] state from which the sampler starts (documented deviation).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

Tensor = torch.Tensor

_EXP_K = 5.0


@dataclass(frozen=True)
class Schedule:
    """A masking schedule γ(t) with its derivative γ'(t); both act elementwise on tensors."""

    name: str
    gamma_fn: Callable[[Tensor], Tensor]
    dgamma_fn: Callable[[Tensor], Tensor]

    def gamma(self, t: Tensor) -> Tensor:
        """γ(t), the masking probability at time t. Shape follows t."""
        return self.gamma_fn(t.clamp(0.0, 1.0))

    def dgamma(self, t: Tensor) -> Tensor:
        """γ'(t) = dγ/dt. Shape follows t."""
        return self.dgamma_fn(t.clamp(0.0, 1.0))

    def elbo_weight(self, t: Tensor, eps: float = 1e-12) -> Tensor:
        """ELBO weight w(t) = γ'(t)/γ(t) (MDLM eq. 10; 1/t for the linear schedule)."""
        return self.dgamma(t) / self.gamma(t).clamp_min(eps)

    def masked_counts(self, num_tokens: Tensor | int, steps: int) -> Tensor:
        """How many of ``num_tokens`` positions are still masked after step i = 0..steps of a sampler.

        ``counts[..., 0] = num_tokens`` and ``counts[..., steps] = 0``; for 0 < i < steps the count is
        ⌊N · γ(1 − i/steps)⌋, then clamped (MaskGIT's rule) so that every step commits at least one
        position and at least one position is left for each later step. With N ≥ steps the counts are
        therefore strictly decreasing; with N < steps some steps commit nothing.
        Returns an int64 tensor of shape ``(*num_tokens.shape, steps + 1)``.
        """
        if steps < 1:
            raise ValueError(f"steps must be ≥ 1, got {steps}")
        n = torch.as_tensor(num_tokens, dtype=torch.long)
        t = 1.0 - torch.arange(steps + 1, dtype=torch.float64) / steps  # (S+1,) from 1 down to 0
        g = self.gamma(t)  # (S+1,)
        counts = torch.floor(n.unsqueeze(-1).double() * g + 1e-9).long()  # (..., S+1)
        counts[..., 0] = n
        counts[..., -1] = 0
        for i in range(1, steps):  # a loop over steps, vectorised over the batch
            prev = counts[..., i - 1]
            c = torch.minimum(counts[..., i], prev - 1)  # commit at least one this step ...
            c = torch.maximum(c, torch.full_like(c, steps - i))  # ... and leave one for each later step
            counts[..., i] = torch.minimum(c, prev).clamp_min(0)  # never un-commit (only binds if N < steps)
        return counts


def even_masked_counts(num_tokens: Tensor | int, steps: int) -> Tensor:
    """LLaDA's split: step i commits ``N // steps`` positions plus one more for the first ``N % steps`` steps.

    Returns the masked count after each step, shape ``(*num_tokens.shape, steps + 1)`` (int64).
    """
    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    n = torch.as_tensor(num_tokens, dtype=torch.long).unsqueeze(-1)  # (..., 1)
    i = torch.arange(steps, device=n.device)  # (S,)
    commits = n // steps + (i < n % steps).long()  # (..., S)
    done = torch.cumsum(commits, dim=-1)
    return torch.cat([n, n - done], dim=-1)


def _poly(p: float) -> Schedule:
    return Schedule(f"poly{p:g}", lambda t: t.pow(p), lambda t: p * t.pow(p - 1.0))


_SCHEDULES: dict[str, Callable[[], Schedule]] = {
    "linear": lambda: Schedule("linear", lambda t: t, lambda t: torch.ones_like(t)),
    "cosine": lambda: Schedule(
        "cosine",
        lambda t: torch.cos(0.5 * math.pi * (1.0 - t)),
        lambda t: 0.5 * math.pi * torch.sin(0.5 * math.pi * (1.0 - t)),
    ),
    "exp": lambda: Schedule(
        "exp",
        lambda t: (1.0 - torch.exp(-_EXP_K * t)) / (1.0 - math.exp(-_EXP_K)),
        lambda t: _EXP_K * torch.exp(-_EXP_K * t) / (1.0 - math.exp(-_EXP_K)),
    ),
    "log-exp": lambda: Schedule(
        "log-exp",
        lambda t: torch.log1p((math.exp(_EXP_K) - 1.0) * t) / _EXP_K,
        lambda t: (math.exp(_EXP_K) - 1.0) / (_EXP_K * (1.0 + (math.exp(_EXP_K) - 1.0) * t)),
    ),
    "arccos": lambda: Schedule(
        "arccos",
        lambda t: (2.0 / math.pi) * torch.arccos(1.0 - t),
        lambda t: (2.0 / math.pi) / torch.sqrt((1.0 - (1.0 - t) ** 2).clamp_min(1e-12)),
    ),
}
_ALIASES = {"logexp": "log-exp", "log_exp": "log-exp", "square": "poly2", "cubic": "poly3", "sqrt": "poly0.5"}

SCHEDULE_NAMES = ("linear", "cosine", "exp", "log-exp", "arccos", "poly<p>")


def get_schedule(name: str | Schedule) -> Schedule:
    """Look a schedule up by name (see the module docstring); a Schedule passes through."""
    if isinstance(name, Schedule):
        return name
    key = _ALIASES.get(name.lower(), name.lower())
    if key in _SCHEDULES:
        return _SCHEDULES[key]()
    if key.startswith("poly"):
        try:
            p = float(key[4:])
        except ValueError:
            p = -1.0
        if p > 0:
            return _poly(p)
    raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULE_NAMES)} (e.g. poly2)")
