"""Token choice: suppression, temperature, top-k / top-p filtering and sampling.

Sampling uses the Gumbel-max trick in float64, ``argmax(logits/τ + G)``, G ~ Gumbel(0, 1): Zheng et
al. 2024 (arXiv:2409.02908) show that low-precision Gumbel-max sampling in masked diffusion models
acts like a lower temperature (better perplexity, less diversity); LLaDA samples in float64 for
this reason. ``temperature == 0`` is ``argmax(logits)`` (first index on ties) and draws no
random numbers.
"""

from __future__ import annotations

from typing import Iterable

import torch

Tensor = torch.Tensor

NEG_INF = float("-inf")


def suppress_ids(suppress_tokens: Iterable[int] | Tensor | None, mask_id: int, vocab_size: int,
                 device: torch.device, valid_size: int | None = None) -> Tensor:
    """Sorted unique token ids never to sample: ``suppress_tokens ∪ {mask_id}`` ∪ [valid_size, V) (the rows of an
    LM head padded beyond the tokenizer), ids ≥ V dropped. (K,) long."""
    ids = [int(mask_id)]
    if valid_size is not None:
        ids += range(int(valid_size), vocab_size)
    if suppress_tokens is not None:
        if isinstance(suppress_tokens, Tensor):
            ids += [int(i) for i in suppress_tokens.flatten().tolist()]
        else:
            ids += [int(i) for i in suppress_tokens]
    if any(i < 0 for i in ids):
        raise ValueError(f"suppress_tokens must be non-negative token ids, got {sorted(set(ids))}")
    kept = sorted({i for i in ids if i < vocab_size})
    return torch.tensor(kept, dtype=torch.long, device=device)


def apply_suppression(logits: Tensor, ids: Tensor) -> Tensor:
    """Set the logits of ``ids`` to −inf (in place). logits (..., V)."""
    if ids.numel():
        logits.index_fill_(-1, ids, NEG_INF)
    return logits


def filter_top_k(logits: Tensor, k: int | None) -> Tensor:
    """Keep the k largest logits per row (ties at the k-th value kept), others −inf. (..., V)."""
    if k is None or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, NEG_INF)


def filter_top_p(logits: Tensor, p: float | None) -> Tensor:
    """Nucleus filter (Holtzman et al. 2020): keep the smallest set of most likely tokens whose
    probability mass reaches ``p`` (always at least the top token), others −inf. (..., V)."""
    if p is None or p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (..., V)
    probs = torch.softmax(sorted_logits, dim=-1)
    mass_before = torch.cumsum(probs, dim=-1) - probs  # mass of strictly more likely tokens
    drop_sorted = mass_before >= p
    drop_sorted[..., 0] = False
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, NEG_INF)


def gumbel(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> Tensor:
    """Standard Gumbel noise −log(−log U) in float64."""
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
    tiny = torch.finfo(torch.float64).tiny
    return -torch.log(-torch.log(u.clamp(tiny, 1.0 - 1e-16)))


def tempered_logits(logits: Tensor, temperature: float, top_k: int | None, top_p: float | None) -> Tensor:
    """``logits / τ`` then top-k then top-p (τ > 0). (..., V) float32."""
    out = logits / temperature
    out = filter_top_k(out, top_k)
    return filter_top_p(out, top_p)


def sample_tokens(logits: Tensor, temperature: float, top_k: int | None, top_p: float | None,
                  generator: torch.Generator) -> Tensor:
    """Draw one token per position from softmax(filtered logits / τ); τ = 0 → argmax.

    logits (..., V) with suppressed ids already at −inf. Returns (...) long.
    """
    if temperature == 0:
        return logits.argmax(dim=-1)
    scaled = tempered_logits(logits, temperature, top_k, top_p).double()  # (..., V)
    return (scaled + gumbel(tuple(scaled.shape), generator, logits.device)).argmax(dim=-1)
