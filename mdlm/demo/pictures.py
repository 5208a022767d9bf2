"""Image canvases as pictures: a grid of the batch's partly decoded canvases (masked latent cells grey),
enlarged with nearest-neighbour pixels so that a 28×28 sample is visible in a browser."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..data.images import ImageTokenLayout
from ..pipelines.image import decode_partial_canvas, tile_images

Tensor = torch.Tensor
MASK_RGB = (0.35, 0.45, 0.85)  # masked latent cells: a light blue, in [-1, 1], unlike any grey a VQ decodes


def enlarge(grid: np.ndarray, min_side: int = 256) -> np.ndarray:
    """(H, W, C) uint8 → (kH, kW, 3) with the smallest integer k making the shorter side ≥ ``min_side``."""
    k = max(1, math.ceil(min_side / min(grid.shape[:2])))
    big = grid.repeat(k, axis=0).repeat(k, axis=1)
    return np.repeat(big, 3, axis=2) if big.shape[2] == 1 else big


def grid_columns(n: int) -> int:
    return max(1, math.ceil(math.sqrt(n)))


def images_picture(images: Tensor, min_side: int = 256) -> np.ndarray:
    """(B, C, H, W) images in [-1, 1] → one enlarged RGB grid (≈ square)."""
    return enlarge(tile_images(images, grid_columns(images.shape[0])), min_side)


def canvas_picture(vq, layout: ImageTokenLayout, canvas: Tensor, min_side: int = 256) -> np.ndarray:
    """(B, 1 + h·w) token canvases, [MASK] where masked → enlarged RGB grid, masked cells light blue."""
    device = next(vq.parameters()).device if hasattr(vq, "parameters") else torch.device("cpu")
    images = decode_partial_canvas(vq, layout, canvas.to(device))  # (B, C, H, W), masked cells grey
    h, w = vq.latent_shape
    masked = (canvas[:, 1:] == layout.mask_id).reshape(-1, 1, h, w).float().cpu()  # (B, 1, h, w)
    cover = F.interpolate(masked, size=images.shape[-2:], mode="nearest") > 0.5  # (B, 1, H, W)
    rgb = images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images  # (B, 3, H, W)
    colour = torch.tensor(MASK_RGB, dtype=rgb.dtype).view(1, 3, 1, 1)
    return images_picture(torch.where(cover, colour, rgb), min_side)
