"""The moment sampler of Hayakawa et al. 2025, "Demystifying MaskGIT Sampler and Beyond: Adaptive
Order Selection in Masked Diffusion" (arXiv:2510.04525), choose-then-sample.

What the paper shows. MaskGIT samples x_i ~ p_i at every masked position i, then keeps the
top-k of ``log p_i(x_i) + α·G_i`` (G Gumbel). By the Gumbel-top-k trick the ℓ-th chosen position,
given the tokens, is drawn with probability ∝ p_i(x_i)^{1/α} among those not yet chosen. Replacing
the denominator by its expectation over x_i ~ p_i gives weights

        w_i = E[p_i(x_i)^{1/α}] = Σ_x p_i(x)^β = ‖p_i‖_β^β,      β = 1 + 1/α,

and the token at a chosen position is then distributed ∝ p_i(x)·p_i(x)^{1/α} = p_i(x)^β: MaskGIT is
implicitly *temperature sampling* at temperature 1/β < 1. The moment sampler does this explicitly:

  1. choose the positions first: k positions without replacement with probability ∝ ‖p_i‖_β^β,
     i.e. Gumbel-top-k of ``log ‖p_i‖_β^β + G_i`` (float64; ``logsumexp(β·log p_i)``);
  2. then sample their tokens from p_i^β / ‖p_i‖_β^β (Gumbel-max, float64).

What we implement (``sampler="moment"``):
  * p_i is the token distribution the maskgit sampler would sample from: softmax of the
    suppressed, top-k/top-p filtered logits / temperature. With ``temperature == 0`` p_i is the
    plain softmax for step 1 and tokens are argmax in step 2.
  * α = ``choice_temperature``, constant over the steps (the paper's analysis is for a fixed α, and
    the token temperature 1/β stays fixed). Our maskgit sampler anneals its choice noise to 0 as
    MaskGIT's code does; at the last steps, where most remaining positions are chosen anyway, the
    asymptotic argument does not apply, so annealing α → 0 there would wrongly make the moment
    sampler's tokens greedy. The moment sampler with α approximates MaskGIT with a constant α while k ≪ N.
  * α = 0 is the limit β → ∞: positions are the top-k of max_x p_i(x) (no noise) and tokens are the
    argmax of p_i — with ``temperature == 0`` exactly the greedy maskgit sampler with
    ``confidence="prob"``. (For temperature τ > 0 our maskgit sampler ranks by the untempered p(x̂)
    as MaskGIT/LLaDA code does, while the moment sampler uses the tempered p_i; they coincide at the
    usual τ = 1.)
  * k per step follows the same exact count schedule as the maskgit sampler (blocks included).
  * Hybrid adaptive unmasking (``hybrid`` = h ∈ [0, 1], the paper's exploration/exploitation
    trade-off): of the k positions of a step, k_g = ⌊h·k + ½⌋ are taken greedily — the top
    ‖p_i‖_β^β (exploitation) — and the other k − k_g are drawn by the moment rule of step 1 among the
    rest (exploration). h = 0 is the pure moment sampler, h = 1 fully greedy position choice.
    NOTE: only summaries of the paper were available to us; this split rule is our reading of its
    hybrid strategy, not a transcription.
  * Sub-steps and partial caching (``substeps``, ``partial_cache``): the chosen tokens of a step
    drawn in sequential groups, later groups from logits that see the earlier ones, optionally
    recomputing only the chosen columns against cached K/V (:mod:`.substeps`,
    :mod:`mdlm.modeling.partial_cache`).
"""

from __future__ import annotations

import torch

from .confidence import select_top
from .token_choice import gumbel, tempered_logits

Tensor = torch.Tensor


def moment_log_probs(logits: Tensor, temperature: float, top_k: int | None, top_p: float | None) -> Tensor:
    """log p_i of the token distribution (float64). logits (..., V) → (..., V)."""
    if temperature > 0:
        logits = tempered_logits(logits, temperature, top_k, top_p)
    return torch.log_softmax(logits.double(), dim=-1)


def beta_of(alpha: float) -> float:
    """β = 1 + 1/α (∞ for α = 0)."""
    return float("inf") if alpha <= 0 else 1.0 + 1.0 / alpha


def moment_log_weights(logp: Tensor, alpha: float) -> Tensor:
    """log ‖p_i‖_β^β = logsumexp_x(β·log p_i(x)); for α = 0 the ranking-equivalent log max_x p_i(x).

    logp (..., V) float64 → (...) float64.
    """
    if alpha <= 0:
        return logp.max(dim=-1).values
    return torch.logsumexp(beta_of(alpha) * logp, dim=-1)


def moment_choose(logw: Tensor, eligible: Tensor, n: Tensor, alpha: float, hybrid: float,
                  generator: torch.Generator) -> Tensor:
    """Step 1: which positions to commit, given their log-weights ``logw`` = log ‖p_i‖_β^β.

    logw (B, W) float64, eligible (B, W) bool, n (B,) long → (B, W) bool with n[b] per row.
    """
    n_greedy = torch.floor(hybrid * n.double() + 0.5).long()  # (B,)
    greedy = select_top(logw, eligible, n_greedy) if hybrid > 0 else torch.zeros_like(eligible)
    keys = logw if alpha <= 0 else logw + gumbel(tuple(logw.shape), generator, logw.device)
    explore = select_top(keys, eligible & ~greedy, n - greedy.sum(-1))
    return greedy | explore


def moment_tokens(logp: Tensor, alpha: float, temperature: float, generator: torch.Generator) -> Tensor:
    """Step 2: tokens from p_i^β / ‖p_i‖_β^β (argmax when α = 0 or temperature = 0). (..., V) → (...) long."""
    if alpha <= 0 or temperature == 0:
        return logp.argmax(dim=-1)
    keys = beta_of(alpha) * logp
    return (keys + gumbel(tuple(keys.shape), generator, logp.device)).argmax(dim=-1)
