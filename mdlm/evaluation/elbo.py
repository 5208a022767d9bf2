"""Monte-Carlo estimate of the masked-diffusion NELBO, the number every run reports.

We use the discrete form of the continuous-time bound (LLaDA eq. 6 / Appendix B; Ou et al. 2024):
with N loss-eligible tokens,

    NELBO(x0) = E_{l ~ U{1..N}} [ (N / l) · E_{S ⊂ eligible, |S| = l} Σ_{i∈S} −log p_θ(x0_i | x0 with S masked) ],

which equals ∫_0^1 γ'(t)/γ(t) E_{x_t}[Σ_masked −log p] dt for every schedule (integrate the Beta
function over t for each |S|), but has bounded variance (the weight is at most N). The K samples of a
sequence take stratified l: l_k = ⌈(u + k)/K · N⌉. A uniform predictor gives exactly N·log V, a
perfect one 0. Whatever weighting trained the model, this is the reported bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..loss import masked_token_nll

Tensor = torch.Tensor
LogitsFn = Callable[[Tensor, Tensor | None], Tensor]


@dataclass
class ElboResult:
    nll_sum: Tensor  # (B,) NELBO in nats per sequence (mean over the K samples)
    num_tokens: Tensor  # (B,) eligible tokens per sequence

    @property
    def nats_per_token(self) -> float:
        return float(self.nll_sum.sum() / self.num_tokens.sum().clamp_min(1))

    @property
    def bits_per_token(self) -> float:
        return self.nats_per_token / math.log(2.0)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.nats_per_token, 700.0))


@torch.no_grad()
def elbo_nll(
    logits_fn: LogitsFn,
    input_ids: Tensor,
    *,
    eligible: Tensor,
    mask_id: int,
    attention_mask: Tensor | None = None,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
) -> ElboResult:
    """NELBO per sequence. input_ids (B, L); eligible (B, L) bool = scored (maskable) positions."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be ≥ 1, got {num_samples}")
    B, L = input_ids.shape
    dev = input_ids.device
    eligible = eligible.bool()
    n = eligible.sum(dim=1)  # (B,)
    u = torch.rand(B, device=dev, generator=generator)  # (B,) one offset per sequence
    total = torch.zeros(B, dtype=torch.float32, device=dev)
    for k in range(num_samples):
        frac = (u + k) / num_samples  # (B,) stratified in (0, 1)
        l = torch.ceil(frac * n).long().clamp(min=1)  # (B,) tokens to mask, 1..N
        l = torch.minimum(l, n)
        scores = torch.rand((B, L), device=dev, generator=generator).masked_fill(~eligible, 2.0)
        rank = scores.argsort(dim=1).argsort(dim=1)  # (B, L)
        masked = (rank < l[:, None]) & eligible  # (B, L) exactly l masked
        noisy = input_ids.masked_fill(masked, mask_id)
        logits = logits_fn(noisy, attention_mask)  # (B, L, V)
        nll = masked_token_nll(logits, input_ids, masked, mask_id).sum(dim=1)  # (B,)
        total += torch.where(n > 0, nll * n.float() / l.clamp_min(1).float(), torch.zeros_like(nll))
    return ElboResult(total / num_samples, n)


def corpus_elbo(
    logits_fn: LogitsFn,
    input_ids: Tensor,
    *,
    mask_id: int,
    eligible: Tensor | None = None,
    batch_size: int = 16,
    num_samples: int = 1,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
    desc: str | None = None,
) -> ElboResult:
    """:func:`elbo_nll` over many rows in batches of ``batch_size`` (one generator throughout, so the same
    seed gives the same masks). input_ids (N, L) on any device; eligible (N, L) bool, default every token.
    ``desc``: a progress bar with this label (on a terminal)."""
    import sys

    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    eligible = torch.ones_like(input_ids, dtype=torch.bool) if eligible is None else eligible.bool()
    nll, ntok = [], []
    starts = range(0, input_ids.shape[0], batch_size)
    for i in tqdm(starts, desc=desc, disable=desc is None or not sys.stderr.isatty()):
        x = input_ids[i : i + batch_size].to(device)  # (b, L)
        r = elbo_nll(logits_fn, x, eligible=eligible[i : i + batch_size].to(device), mask_id=mask_id,
                     num_samples=num_samples, generator=generator)
        nll.append(r.nll_sum.cpu())
        ntok.append(r.num_tokens.cpu())
    if not nll:
        return ElboResult(torch.zeros(0), torch.zeros(0, dtype=torch.long))
    return ElboResult(torch.cat(nll), torch.cat(ntok))
