"""The masked-diffusion loss: Σ_masked −log p_θ(x0 | x_t) · w(t).

Weightings (eMIGM §3 shows MaskGIT's loss and the MDM ELBO are one family):
  * ``"elbo"``:   w(t) = γ'(t)/γ(t) — the continuous-time NELBO (MDLM eq. 10; LLaDA eq. 3 uses the
                  linear schedule, w = 1/t). Averaged over t ~ U[0,1] and divided by the number of
                  tokens it is an upper bound on the NLL per token.
  * ``"maskgit"`` (alias ``"constant"``): w(t) = 1 — MaskGIT's / eMIGM's weighting.

Normalisation:
  * ``"token"``:    Σ_b Σ_l w·CE / Σ_b N_b  (N_b = loss-eligible tokens of row b) — per-token.
  * ``"sequence"``: mean_b (Σ_l w·CE / N_b) — each row weighs the same (LLaDA SFT: divide by the
                    response length).

The [MASK] logit is set to −∞ before the softmax: the clean data never contains [MASK]
(MDLM's "zero masking probabilities").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from .schedules import Schedule

Tensor = torch.Tensor
Weighting = Literal["elbo", "maskgit", "constant"]
Normalization = Literal["token", "sequence"]
WEIGHTINGS = ("elbo", "maskgit", "constant")
NORMALIZATIONS = ("token", "sequence")


def time_weight(schedule: Schedule, t: Tensor, weighting: str) -> Tensor:
    """w(t) for each row, shape (B,)."""
    if weighting == "elbo":
        return schedule.elbo_weight(t)
    if weighting in ("maskgit", "constant"):
        return torch.ones_like(t)
    raise ValueError(f"unknown weighting {weighting!r}; valid: {', '.join(WEIGHTINGS)}")


def token_cross_entropy(logits: Tensor, targets: Tensor, mask_id: int | None) -> Tensor:
    """−log softmax(ℓ)[x0] per row in float32, with the [MASK] logit at −∞: (M, V), (M,) → (M,)."""
    lg = logits.float()  # (M, V)
    if mask_id is not None and 0 <= mask_id < lg.shape[-1]:
        lg[:, mask_id] = float("-inf")
    return F.cross_entropy(lg, targets, reduction="none")


def fused_token_cross_entropy(logits: Tensor, targets: Tensor, mask_id: int | None) -> Tensor:
    """:func:`token_cross_entropy` with one pass over the logits forward and one read + one write backward
    (:mod:`mdlm.fused_ce`, each pass one ``torch.compile`` kernel on CUDA). Same values up to float rounding."""
    from .fused_ce import token_cross_entropy_fused

    return token_cross_entropy_fused(logits, targets, mask_id)


def masked_token_nll(logits: Tensor, targets: Tensor, masked: Tensor, mask_id: int | None,
                     fused: bool = False, index: Tensor | None = None) -> Tensor:
    """−log p(x0_l | x_t) at masked positions, 0 elsewhere → (B, L) float32.

    ``logits`` is (B, L, V), or already gathered at the masked positions as (M, V) (row-major order
    of ``masked``). Only masked positions go through the softmax, so memory scales with the number
    of masked tokens rather than B·L·V. ``fused``: use :func:`fused_token_cross_entropy`. ``index``: the masked
    positions as (M,) flat indices (``masked.flatten().nonzero()[:, 0]``) with (M, V) logits — then nothing here
    waits for the GPU (a boolean index needs the count M on the host).
    """
    nll = torch.zeros(targets.shape, dtype=torch.float32, device=logits.device)  # (B, L)
    ce = fused_token_cross_entropy if fused else token_cross_entropy
    if index is not None and logits.dim() == 2:
        rows = ce(logits, targets.reshape(-1).index_select(0, index), mask_id)  # (M,)
        return nll.view(-1).index_copy(0, index, rows).view(targets.shape)
    sel = logits[masked] if logits.dim() == 3 else logits  # (M, V)
    nll[masked] = ce(sel, targets[masked], mask_id)  # (M,)
    return nll


@dataclass
class LossOutput:
    loss: Tensor  # scalar that is optimised
    nll_sum: Tensor  # (B,) Σ_masked CE per row (unweighted)
    weighted_sum: Tensor  # (B,) Σ_masked w(t)·CE per row
    num_tokens: Tensor  # (B,) loss-eligible tokens per row
    num_masked: Tensor  # (B,) masked tokens per row


def diffusion_loss(
    logits: Tensor,
    targets: Tensor,
    masked: Tensor,
    t: Tensor,
    schedule: Schedule,
    *,
    eligible: Tensor,
    mask_id: int | None,
    weighting: str = "elbo",
    normalization: str = "token",
    fused_ce: bool = False,
    index: Tensor | None = None,
) -> LossOutput:
    """The weighted masked-token cross-entropy (see module docstring).

    logits (B, L, V) or (M, V) at masked positions; targets (B, L) = x0; masked (B, L) bool = positions masked in x_t;
    t (B,); eligible (B, L) bool = positions that could have been masked (the normaliser);
    fused_ce: the one-pass fused cross-entropy (:func:`fused_token_cross_entropy`);
    index: (M,) flat indices of ``masked`` matching (M, V) logits (no host synchronisation, :func:`masked_token_nll`).
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; valid: {', '.join(NORMALIZATIONS)}")
    nll = masked_token_nll(logits, targets, masked, mask_id, fused_ce, index)  # (B, L)
    w = time_weight(schedule, t.float(), weighting).to(nll.device)  # (B,)
    nll_sum = nll.sum(dim=1)  # (B,)
    weighted = w * nll_sum  # (B,)
    n_tok = eligible.sum(dim=1).float()  # (B,)
    if normalization == "token":
        loss = weighted.sum() / n_tok.sum().clamp_min(1.0)
    else:
        loss = (weighted / n_tok.clamp_min(1.0)).mean()
    return LossOutput(loss, nll_sum, weighted, n_tok, masked.sum(dim=1))


def nats_to_bits(x: float) -> float:
    return x / math.log(2.0)
