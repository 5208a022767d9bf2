"""Kernel Inception Distance on precomputed features (Bińkowski et al. 2018, "Demystifying MMD GANs", §4 and
appendix: the unbiased estimator of the squared maximum mean discrepancy with the cubic polynomial kernel).

    k(x, y) = (xᵀy / d + 1)³                                   (d = the feature dimension)

    MMD²ᵤ(X, Y) = 1/(m(m−1)) Σ_{i≠j} k(xᵢ, xⱼ) + 1/(n(n−1)) Σ_{i≠j} k(yᵢ, yⱼ) − 2/(mn) Σ_{i,j} k(xᵢ, yⱼ)

KID = the mean of MMD²ᵤ over ``num_subsets`` random subsets (drawn without replacement inside a subset, from a
seeded generator) of ``subset_size`` rows of each set; its std over the subsets is reported beside it. Unlike the
FID, the estimator is unbiased: for two samples of one distribution its expectation is 0 whatever their sizes
(single values can be < 0), so a floor measured on 171 images and a row measured on 1,008 are comparable.
With our own classifier's features it is "classifier-KID", not the Inception KID of papers.
``torchmetrics.image.kid.poly_mmd`` computes the same per-subset estimate (tests/test_kid.py checks this); its
metric class draws subsets from the global RNG and needs images, hence this function on features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

Tensor = torch.Tensor


@dataclass(frozen=True)
class KID:
    """KID mean and std over the subsets (squared-feature units: compare only numbers on the same features)."""

    mean: float
    std: float
    num_subsets: int
    subset_size: int

    def as_dict(self, digits: int = 6) -> dict[str, float | int]:
        """JSON-ready, ``digits`` significant digits."""
        sig = (lambda v: float(f"{v:.{digits}g}"))
        return {"kid": sig(self.mean), "kid_std": sig(self.std),
                "kid_subsets": self.num_subsets, "kid_subset_size": self.subset_size}


def _as_tensor(f: np.ndarray | Tensor) -> Tensor:
    t = f.detach().cpu() if isinstance(f, Tensor) else torch.from_numpy(np.asarray(f))
    return t.double()


def polynomial_kernel(a: Tensor, b: Tensor, degree: int = 3, coef: float = 1.0) -> Tensor:
    """(…, m, d), (…, n, d) → (…, m, n): k(x, y) = (xᵀy / d + coef)^degree (Bińkowski et al. 2018, eq. in §4)."""
    return (a @ b.transpose(-1, -2) / a.shape[-1] + coef) ** degree


def mmd2_unbiased(x: Tensor, y: Tensor) -> Tensor:
    """(S, m, d), (S, n, d) → (S,) unbiased MMD² per subset (module docstring), cubic polynomial kernel."""
    m, n = x.shape[-2], y.shape[-2]
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)  # (S, m, m) …
    sxx = kxx.sum((-1, -2)) - kxx.diagonal(dim1=-2, dim2=-1).sum(-1)  # (S,) off-diagonal sums
    syy = kyy.sum((-1, -2)) - kyy.diagonal(dim1=-2, dim2=-1).sum(-1)
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2.0 * kxy.sum((-1, -2)) / (m * n)


def _subsets(n: int, size: int, count: int, g: torch.Generator) -> Tensor:
    """(count, size) row indices, each row a draw without replacement from range(n)."""
    return torch.rand(count, n, generator=g).argsort(dim=1)[:, :size]


def default_subset_size(n_x: int, n_y: int, paper: int = 1000) -> int:
    """min(1000, N_x // 2, N_y // 2) (at least 2): the subset size :func:`kid` uses by default."""
    return max(2, min(paper, n_x // 2, n_y // 2))


def kid(features_x: np.ndarray | Tensor, features_y: np.ndarray | Tensor, *, num_subsets: int = 100,
        subset_size: int | None = None, seed: int = 0, chunk: int = 10) -> KID:
    """KID between two (N, d) feature sets: mean ± std of MMD²ᵤ over ``num_subsets`` subsets of
    min(subset_size, N_x, N_y) rows of each (module docstring). Default size: the paper's 1000, at most half the
    smaller set — subsets of a whole set are all the same, and their std (0) would say nothing. Deterministic for a seed; MMD²ᵤ is symmetric, so
    swapping the sets changes only which random subsets are drawn (nothing when every subset is a whole set).
    ``chunk`` subsets are evaluated at once (memory: chunk · subset_size² doubles per kernel matrix)."""
    fx, fy = _as_tensor(features_x), _as_tensor(features_y)
    if fx.ndim != 2 or fy.ndim != 2 or fx.shape[1] != fy.shape[1]:
        raise ValueError(f"need (N, d) feature sets of one d, got {tuple(fx.shape)} and {tuple(fy.shape)}")
    size = default_subset_size(fx.shape[0], fy.shape[0]) if subset_size is None else subset_size
    size = min(size, fx.shape[0], fy.shape[0])
    if size < 2 or num_subsets < 1:
        raise ValueError(f"KID needs ≥ 2 rows per set and ≥ 1 subset, got sizes {fx.shape[0]}, {fy.shape[0]}")
    g = torch.Generator().manual_seed(seed)
    ix, iy = _subsets(fx.shape[0], size, num_subsets, g), _subsets(fy.shape[0], size, num_subsets, g)
    vals = torch.cat([mmd2_unbiased(fx[ix[i : i + chunk]], fy[iy[i : i + chunk]])  # (chunk,)
                      for i in range(0, num_subsets, chunk)])
    std = float(vals.std(unbiased=True)) if num_subsets > 1 else 0.0
    return KID(float(vals.mean()), std, num_subsets, size)
