"""Reconstruction quality of an image tokenizer: PSNR and codebook usage on a set of images."""

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


@torch.no_grad()
def evaluate_reconstruction(tokenizer, images: Tensor, batch_size: int = 500) -> dict[str, float]:
    """Encode → decode (clamped to [-1, 1]) every image of ``images`` (N, C, H, W) in [-1, 1].

    Returns ``psnr_db`` (mean of per-image PSNR), ``psnr_of_mean_mse_db`` (PSNR of the set's mean
    MSE), ``mse``, and the codebook usage of the codes: ``fraction_used``, ``codes_used``,
    ``perplexity`` (exp entropy of the code histogram; at most K)."""
    psnrs, sq, all_codes = [], 0.0, []
    for i in range(0, images.shape[0], batch_size):
        x = images[i : i + batch_size]  # (b, C, H, W)
        codes = tokenizer.encode(x)  # (b, h, w)
        rec = tokenizer.decode(codes).to(x.device, x.dtype)  # (b, C, H, W)
        psnrs.append(psnr(rec, x).cpu())
        sq += float((rec.double() - x.double()).pow(2).sum())
        all_codes.append(codes.cpu())
    mse = sq / images.numel()
    usage = codebook_usage(torch.cat(all_codes), tokenizer.codebook_size)
    return {
        "psnr_db": float(torch.cat(psnrs).mean()),
        "psnr_of_mean_mse_db": 10.0 * math.log10(4.0 / max(mse, 1e-20)),
        "mse": mse,
        "n_images": int(images.shape[0]),
        "codebook_size": int(tokenizer.codebook_size),
        **{f"codebook_{k}": v for k, v in usage.items()},
    }
