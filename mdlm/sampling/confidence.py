"""Confidence of a prediction and selection of the most confident positions.

All computed from the model distribution p = softmax(logits) at temperature 1 (suppressed ids have
p = 0), in float64 so that the order of positions does not depend on rounding:

  prob     p(x̂)            probability of the chosen token x̂ (MaskGIT; LLaDA "low_confidence")
  margin   p₁ − p₂           top-1 minus top-2 probability, independent of x̂ (Kim et al. 2025)
  entropy  −H(p) = Σ p log p  negative entropy (higher = more certain; Ben-Hamu et al. 2025)
  random   U(0, 1)           a random order (same as ``remasking="random"``)

``score`` is the quantity positions are ranked by and to which MaskGIT's choice noise is added:
log p(x̂) for prob, log(p₁ − p₂) for margin, −H for entropy, U for random.

MaskGIT choice noise (Chang et al. 2022, their released code): ``score + α·G`` with G ~ Gumbel(0, 1)
in float64 and α = choice_temperature · s, s = 1 − (i+1)/steps the (linear) time left after step i
of the block, so the noise anneals to 0 at the block's last step.
"""

from __future__ import annotations

import torch

from .token_choice import gumbel

Tensor = torch.Tensor


def confidence_and_score(logits: Tensor, tokens: Tensor, kind: str,
                         generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Confidence and ranking score of ``tokens`` under softmax(logits).

    logits (..., V) float, tokens (...) long → (conf, score), both (...) float64.
    """
    if kind == "random":
        u = torch.rand(tokens.shape, generator=generator, device=tokens.device, dtype=torch.float64)
        return u, u
    if kind == "prob":  # log p(x̂) = ℓ(x̂) − logsumexp(ℓ): no (..., V) log-probability tensor
        lg = logits.double()  # (..., V)
        score = lg.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(lg, dim=-1)  # (...)
        return score.exp(), score
    logp = torch.log_softmax(logits.double(), dim=-1)  # (..., V)
    if kind == "margin":
        top2 = logp.topk(2, dim=-1).values.exp()  # (..., 2)
        conf = top2[..., 0] - top2[..., 1]
        return conf, torch.log(conf.clamp_min(1e-300))
    if kind == "entropy":
        p = logp.exp()
        neg_h = torch.where(p > 0, p * logp, torch.zeros_like(p)).sum(-1)  # (...)
        return neg_h, neg_h
    raise ValueError(f"unknown confidence {kind!r}")


def add_choice_noise(score: Tensor, alpha: float, generator: torch.Generator) -> Tensor:
    """MaskGIT's annealed choice noise: ``score + α·G``, G ~ Gumbel(0, 1) float64. Shape follows score."""
    if alpha <= 0:
        return score
    return score.double() + alpha * gumbel(tuple(score.shape), generator, score.device)


# windows up to this width rank by pairwise comparison ((B, W, W) booleans: a few fusable element-wise kernels, no sort)
PAIRWISE_MAX_WIDTH = 64


def select_top(score: Tensor, eligible: Tensor, n: Tensor) -> Tensor:
    """Per row, the ``n[b]`` eligible positions with the largest score (ties → lower index).

    score (B, W), eligible (B, W) bool, n (B,) long (clamped to the eligible count).
    Returns (B, W) bool. Vectorised: every position's rank in a stable descending sort — for W ≤
    :data:`PAIRWISE_MAX_WIDTH` counted as #{j: s_j > s_i} + #{j < i: s_j = s_i}, else from a sort.
    """
    key = score.double().nan_to_num(nan=-1e300, posinf=1e300, neginf=-1e300)  # eligible -inf still rank first
    masked = torch.where(eligible, key, torch.full_like(key, float("-inf")))  # (B, W)
    W = masked.shape[-1]
    if W <= PAIRWISE_MAX_WIDTH:
        col = torch.arange(W, device=masked.device)  # (W,)
        ki, kj = masked.unsqueeze(-1), masked.unsqueeze(-2)  # (B, W, 1) position i, (B, 1, W) position j
        ranks = ((kj > ki) | ((kj == ki) & (col < col.unsqueeze(-1)))).sum(dim=-1)  # (B, W)
    else:
        order = torch.argsort(masked, dim=-1, descending=True, stable=True)  # (B, W)
        ranks = torch.empty_like(order).scatter_(-1, order, torch.arange(W, device=order.device)
                                                 .expand_as(order).contiguous())
    n = torch.minimum(n.long(), eligible.sum(-1))
    return (ranks < n.unsqueeze(-1)) & eligible
