"""Fréchet distance between Gaussian fits of feature sets (Heusel et al. 2017, "GANs Trained by a Two
Time-Scale Update Rule Converge to a Local Nash Equilibrium", eq. 6 — Dowson & Landau 1982):

    d² = ||μ₁ - μ₂||² + Tr(Σ₁ + Σ₂ - 2 (Σ₁ Σ₂)^{1/2})

With the features of a CNN of :mod:`mdlm.evaluation.classifier` this is "classifier-FID (<its data set> CNN
features)" — NOT comparable to Inception FID numbers in papers.

Numerics: Σ₁Σ₂ is not symmetric, but it is similar to the PSD matrix M = Σ₁^{1/2} Σ₂ Σ₁^{1/2}
(M = Σ₁^{1/2} (Σ₁Σ₂) Σ₁^{-1/2}), so Tr (Σ₁Σ₂)^{1/2} = Σᵢ √λᵢ(M). Both square roots come from
symmetric eigendecompositions (``eigh``) in float64 with tiny negative eigenvalues (round-off)
clipped to 0 — no complex parts to discard, no ill-conditioned inverse, valid for singular Σ.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

Tensor = torch.Tensor


def gaussian_stats(features: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(N, d) features → mean (d,) and unbiased covariance (d, d), float64."""
    f = features.detach().cpu().double().numpy() if isinstance(features, Tensor) else np.asarray(features, np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"need (N >= 2, d) features, got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False, ddof=1).reshape(f.shape[1], f.shape[1])


def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive-semidefinite matrix (eigenvalues < 0 from
    round-off are clipped to 0)."""
    a = 0.5 * (a + a.T)
    w, v = np.linalg.eigh(a)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr (Σ₁ Σ₂)^{1/2} = Σ √λ(Σ₁^{1/2} Σ₂ Σ₁^{1/2})."""
    s1 = sqrtm_psd(np.asarray(sigma1, np.float64))
    m = s1 @ np.asarray(sigma2, np.float64) @ s1
    w = np.linalg.eigvalsh(0.5 * (m + m.T))
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """d² between N(μ₁, Σ₁) and N(μ₂, Σ₂) (see module docstring); ≥ 0 up to round-off."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: μ {mu1.shape} / {mu2.shape}, Σ {sigma1.shape} / {sigma2.shape}")
    diff = mu1 - mu2
    d2 = float(diff @ diff) + float(np.trace(sigma1) + np.trace(sigma2)) - 2.0 * trace_sqrt_product(sigma1, sigma2)
    return max(d2, 0.0)


def feature_fid(features1: np.ndarray | Tensor, features2: np.ndarray | Tensor) -> float:
    """Fréchet distance between the Gaussian fits of two (N, d) feature sets."""
    return frechet_distance(*gaussian_stats(features1), *gaussian_stats(features2))


def fid_between(features_a: np.ndarray | Tensor, features_b: np.ndarray | Tensor) -> float:
    """Fréchet distance of two (N, d) feature sets — the hook for floors computed elsewhere (real vs real, VQ
    reconstructions vs real): features from :func:`classifier_features`. Same as :func:`feature_fid`."""
    return feature_fid(features_a, features_b)


@torch.no_grad()
def extract_features(fn: Callable[[Tensor], Tensor], images: Tensor, batch_size: int = 500, device=None) -> np.ndarray:
    """Apply a feature function to (N, C, H, W) images in batches → (N, d) float64 array."""
    out = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i : i + batch_size]
        out.append(fn(x.to(device) if device is not None else x).double().cpu().numpy())
    return np.concatenate(out)


def classifier_features(model, images: Tensor, batch_size: int = 500) -> np.ndarray:
    """Penultimate features of :class:`mdlm.evaluation.classifier.ImageClassifierCNN` (eval mode)."""
    model.eval()
    return extract_features(model.features, images, batch_size, device=next(model.parameters()).device)


def classifier_fid(model, images1: Tensor, images2: Tensor, batch_size: int = 500) -> float:
    """classifier-FID (Fashion-MNIST CNN features) between two image sets (N, C, H, W) in [-1, 1]."""
    return feature_fid(classifier_features(model, images1, batch_size), classifier_features(model, images2, batch_size))
