"""The rows a ``--max_train_samples`` / ``--max_eval_samples`` limit keeps.

Image sets are often stored in class order (the emoji export is sorted by category), so "the first N" would be a
few classes only; a seeded random draw (kept in file order) is a fair subset, and the same one on every run.
"""

from __future__ import annotations

import torch


def subset_indices(n: int, limit: int | None, seed: int = 0) -> torch.Tensor | None:
    """Sorted indices (limit,) of a seeded random draw from range(n) without replacement; None = keep all rows
    (no limit, or a limit ≥ n)."""
    if not limit or limit >= n:
        return None
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort().values
