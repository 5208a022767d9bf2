"""Quantisers of the image tokenizers (``quantizer`` of :class:`~mdlm.tokenizers.image.VQConfig` and
:class:`~mdlm.tokenizers.vqgan.VQGANConfig`), all with one interface:

    q = quantizer(z)            # z (B, D, h, w) → Quantized(quantized (B, D, h, w), codes (B, h, w), commitment_loss)
    quantizer.lookup(codes)     # (B, h, w) → (B, D, h, w)
    quantizer.codes_of(z)       # (B, D, h, w) → (B, h, w), never changes any state
    quantizer.codebook_size

* :class:`FSQuantizer` — Finite Scalar Quantization (Mentzer, Minnen, Agustsson & Tschannen 2023, "Finite Scalar
  Quantization: VQ-VAE Made Simple", §3 eq. 1-2): each of the d latent channels is bounded and rounded to one of
  L_i levels; the implicit codebook is the product grid (size Π L_i). No codebook, so no collapse, no auxiliary loss.
* :class:`L2EMAQuantizer` — the EMA codebook of :class:`mdlm.tokenizers.image.EMAQuantizer` on l2-normalised
  vectors (ViT-VQGAN, Yu et al. 2021 §3.2: "factorized" low-dimensional, l2-normalised codes; nearest code = highest
  cosine similarity). The low dimension comes from the VQGAN's 1×1 ``quant_conv``.
* :class:`mdlm.tokenizers.image.EMAQuantizer` (plain Euclidean EMA codebook) is used as is.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .image import EMAQuantizer, Quantized

Tensor = torch.Tensor


class FSQuantizer(nn.Module):
    """Finite Scalar Quantization (Mentzer et al. 2023). ``levels`` L_1..L_d; codebook_size = Π L_i.

    Channel i is bounded to [-(L_i-1)/2, (L_i-1)/2] by ``f(z) = tanh(z + s)·h - o`` (h = (L_i-1)(1-ε)/2, o = ½ for
    even L_i, s = atanh(o/h)), rounded with a straight-through gradient, and divided by ⌊L_i/2⌋ so values lie in
    [-1, 1]. Code index = Σ_i digit_i · Π_{j<i} L_j with digit_i = round value + ⌊L_i/2⌋.
    """

    def __init__(self, levels: list[int] | tuple[int, ...]):
        super().__init__()
        if not levels or any(int(v) < 2 for v in levels):
            raise ValueError(f"fsq_levels must be integers ≥ 2, got {list(levels)}")
        # plain Python ints, not buffers: nothing to save, and nothing that loading a checkpoint could leave unset
        self.level_list = [int(v) for v in levels]
        self.basis_list = [math.prod(self.level_list[:i]) for i in range(len(self.level_list))]
        self.codebook_size = math.prod(self.level_list)
        self.dim = len(self.level_list)
        self.last_restarts = 0  # interface parity with the EMA quantisers

    def _levels(self, like: Tensor) -> Tensor:  # (1, d, 1, 1) float32 on like's device
        return torch.tensor(self.level_list, dtype=torch.float32, device=like.device).view(1, -1, 1, 1)

    def _basis(self, like: Tensor) -> Tensor:  # (1, d, 1, 1) int64
        return torch.tensor(self.basis_list, dtype=torch.long, device=like.device).view(1, -1, 1, 1)

    def _bound(self, z: Tensor) -> Tensor:  # (B, d, h, w) → same, channel i in [-(L_i-1)/2, (L_i-1)/2]
        lv = self._levels(z)
        half = (lv - 1) * (1 - 1e-3) / 2
        offset = torch.where(lv % 2 == 0, 0.5, 0.0)
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def _round(self, z: Tensor) -> Tensor:  # bounded → integer grid values (straight-through), (B, d, h, w)
        b = self._bound(z)
        return b + (torch.round(b) - b).detach()

    def _half_width(self, like: Tensor) -> Tensor:  # (1, d, 1, 1) ⌊L_i/2⌋ as float32
        return torch.div(self._levels(like), 2, rounding_mode="floor")

    def codes_of(self, z: Tensor) -> Tensor:
        """(B, d, h, w) → (B, h, w) int64."""
        digits = (torch.round(self._bound(z.float())) + self._half_width(z)).long()  # (B, d, h, w) in [0, L_i)
        return (digits * self._basis(z)).sum(1)

    def lookup(self, codes: Tensor) -> Tensor:
        """(B, h, w) → (B, d, h, w) grid points in [-1, 1]."""
        digits = (codes.long()[:, None] // self._basis(codes)) % self._levels(codes).long()  # (B, d, h, w)
        hw = self._half_width(codes)
        return (digits.float() - hw) / hw

    def forward(self, z: Tensor) -> Quantized:
        with torch.autocast(device_type=z.device.type, enabled=False):
            z = z.float()
            if z.shape[1] != self.dim:
                raise ValueError(f"FSQ with {self.dim} levels got {z.shape[1]} latent channels")
            q = self._round(z) / self._half_width(z)  # (B, d, h, w) in [-1, 1]
            return Quantized(quantized=q, codes=self.codes_of(z), commitment_loss=z.new_zeros(()))


class L2EMAQuantizer(EMAQuantizer):
    """:class:`EMAQuantizer` on the unit sphere: encoder outputs and codes are l2-normalised, so the nearest code is the
    one of highest cosine similarity (ViT-VQGAN §3.2); after each EMA update the codebook is re-normalised."""

    def codes_of(self, z: Tensor) -> Tensor:
        b, d, h, w = z.shape
        flat = F.normalize(z.float().permute(0, 2, 3, 1).reshape(-1, d), dim=1)  # (N, D)
        return self.nearest(flat).view(b, h, w)

    def _forward(self, z: Tensor) -> Quantized:
        out = super()._forward(F.normalize(z, dim=1))
        if self.training:
            with torch.no_grad():
                self.embedding.copy_(F.normalize(self.embedding, dim=1))
        return out

