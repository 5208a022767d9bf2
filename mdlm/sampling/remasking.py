"""Position rules that are not "top-k by confidence": MDLM's ancestral commits and ReMDM-style
re-masking of already committed tokens.

Ancestral (``remasking="ancestral"``; MDLM's reverse step, Sahoo et al. 2024; Shi et al. 2024): going from
time t to s < t, a position that is masked at t is unmasked with probability
(γ(t) − γ(s)) / γ(t), independently of the others; its token is the one sampled from the model.
The number committed per step is therefore random (binomial), *not* the exact schedule count; the
last step of a block (s = 0) commits every remaining position. ``schedule="even"`` has no γ and uses
the linear γ(t) = t here.

Re-masking committed tokens (``remask_committed`` = η > 0): after the commits of every non-final step
of a block whose schedule time s lies in ``remask_interval`` (lo < s ≤ hi), r = ⌊η · m⌋ of the m
tokens of the current block committed in *earlier* steps are sent back to [MASK]:
  * ``remask_strategy="low_confidence"``: the r with the lowest confidence at the time they were
    committed (like ReMDM-conf, Wang et al. 2025, and Token-Critic's "remask the least plausible",
    but with our stored confidence instead of a critic and a deterministic count);
  * ``"random"``: r uniformly random ones (ReMDM's uniform σ with an exact count).
Only generated positions of the current block are eligible (prompt / condition / earlier blocks
never are). The next step's count target ``masked − counts[i+1]`` re-commits them, so every block
still finishes in its steps (the final step never re-masks).
"""

from __future__ import annotations

import torch

from .confidence import select_top

Tensor = torch.Tensor


def ancestral_commit_prob(gamma_t: float, gamma_s: float) -> float:
    """P(unmask in [s, t] | masked at t) = (γ(t) − γ(s)) / γ(t); 1 when γ(s) = 0."""
    if gamma_s <= 0.0 or gamma_t <= 0.0:
        return 1.0
    return min(max((gamma_t - gamma_s) / gamma_t, 0.0), 1.0)


def ancestral_commit(eligible: Tensor, prob: float, generator: torch.Generator) -> Tensor:
    """Independent Bernoulli(prob) commits among eligible positions. eligible (B, W) → (B, W) bool."""
    if prob >= 1.0:
        return eligible.clone()
    u = torch.rand(eligible.shape, generator=generator, device=eligible.device, dtype=torch.float64)
    return eligible & (u < prob)


def remask_count(n_committed: Tensor, fraction: float) -> Tensor:
    """r = ⌊η · m⌋ per row. (B,) long."""
    return torch.floor(fraction * n_committed.double() + 1e-9).long()


def choose_remask(old: Tensor, stored_conf: Tensor, fraction: float, strategy: str,
                  generator: torch.Generator) -> Tensor:
    """Which committed tokens go back to [MASK]. old (B, W) bool, stored_conf (B, W) float64 → (B, W) bool."""
    r = remask_count(old.sum(-1), fraction)
    if int(r.max()) == 0:
        return torch.zeros_like(old)
    if strategy == "random":
        score = torch.rand(old.shape, generator=generator, device=old.device, dtype=torch.float64)
    elif strategy == "low_confidence":
        score = -stored_conf.double()
    else:
        raise ValueError(f"unknown remask_strategy {strategy!r}")
    return select_top(score, old, r)
