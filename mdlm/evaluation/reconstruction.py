"""Reconstruction quality of an image tokenizer on a set of images: PSNR, SSIM (torchmetrics, optional), codebook
usage and perplexity, and the reconstructions themselves (for the reconstruction-FID floor of
``eval/fid.py --images recon.npz --reference originals.npz``)."""

from __future__ import annotations

import math

import torch

from ..tokenizers.image import codebook_usage

Tensor = torch.Tensor


def psnr(x: Tensor, y: Tensor, data_range: float = 2.0) -> Tensor:
    """Per-image peak signal-to-noise ratio in dB, 10·log10(R² / MSE) over all pixels of an image.

    ``data_range`` R = 2 for images in [-1, 1] (the same number as R = 1 on [0, 1] images). An exact
    reconstruction is capped at MSE = 1e-10 (100 dB for R = 1)."""
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {tuple(x.shape)} vs {tuple(y.shape)}")
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1).clamp_min(1e-10 * data_range**2)  # (B,)
    return 10.0 * torch.log10(data_range**2 / mse)


def ssim(x: Tensor, y: Tensor) -> Tensor | None:
    """Per-image SSIM (Wang et al. 2004; 11×11 Gaussian window σ = 1.5, K₁ = 0.01, K₂ = 0.03) of images in [-1, 1],
    computed by ``torchmetrics`` on [0, 1] images; ``None`` when torchmetrics is not installed."""
    try:
        from torchmetrics.functional.image import structural_similarity_index_measure
    except ImportError:
        return None
    a, b = ((x.float() + 1) / 2).clamp(0, 1), ((y.float() + 1) / 2).clamp(0, 1)  # (B, C, H, W)
    return structural_similarity_index_measure(a, b, data_range=1.0, reduction="none")  # (B,)


@torch.no_grad()
def reconstruct(tokenizer, images: Tensor, batch_size: int = 500) -> tuple[Tensor, Tensor]:
    """Encode → decode (clamped) ``images`` (N, C, H, W) in [-1, 1] → (reconstructions (N, C, H, W) on the CPU,
    codes (N, h, w))."""
    recs, codes = [], []
    for i in range(0, images.shape[0], batch_size):
        c = tokenizer.encode(images[i : i + batch_size])  # (b, h, w)
        recs.append(tokenizer.decode(c).float().cpu())
        codes.append(c.cpu())
    return torch.cat(recs), torch.cat(codes)


def reconstruction_metrics(images: Tensor, recs: Tensor, codes: Tensor, codebook_size: int) -> dict[str, float]:
    """``psnr_db`` (mean of per-image PSNR), ``psnr_of_mean_mse_db``, ``mse``, ``ssim`` (mean per-image SSIM, null
    without torchmetrics) and the codebook usage of ``codes``: ``codebook_fraction_used``, ``codebook_codes_used``,
    ``codebook_perplexity`` (exp entropy of the code histogram; at most K)."""
    x = images.float().cpu()
    mse = float((recs.double() - x.double()).pow(2).mean())
    s = ssim(recs, x)
    usage = codebook_usage(codes, codebook_size)
    return {
        "psnr_db": float(psnr(recs, x).mean()),
        "psnr_of_mean_mse_db": 10.0 * math.log10(4.0 / max(mse, 1e-20)),
        "mse": mse,
        "ssim": None if s is None else float(s.mean()),
        "n_images": int(x.shape[0]),
        "codebook_size": int(codebook_size),
        **{f"codebook_{k}": v for k, v in usage.items()},
    }


def evaluate_reconstruction(tokenizer, images: Tensor, batch_size: int = 500) -> dict[str, float]:
    """:func:`reconstruct` then :func:`reconstruction_metrics` (see there for the keys)."""
    recs, codes = reconstruct(tokenizer, images, batch_size)
    return reconstruction_metrics(images, recs, codes, tokenizer.codebook_size)
