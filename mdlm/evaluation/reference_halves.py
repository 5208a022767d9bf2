"""Two disjoint, seeded halves of a held-out split: the unpaired real-vs-real reference points of the image scores.

Half A stands in for "the data", half B for "a generator that samples the data exactly": KID(B, A) ≈ 0 is the floor
of a perfect generator at that size (unpaired, and neither half was seen by the feature classifier), and
KID(VQ reconstructions of B, A) is the tokenizer's floor. Pairing the two sets (reconstructions of the *same*
images as the reference) would cancel the metric's sampling noise there and nowhere else; hence disjoint halves.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor
HALVES_SEED = 0


def split_halves(n: int, seed: int = HALVES_SEED, cap: int | None = None) -> tuple[Tensor, Tensor]:
    """Indices (h,), (h,) of two disjoint halves of range(n) from a seeded permutation; h = min(n // 2, cap)."""
    if n < 4:
        raise ValueError(f"splitting a reference set into halves needs at least 4 images, got {n}")
    h = n // 2 if cap is None else min(n // 2, cap)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:h], perm[h : 2 * h]
