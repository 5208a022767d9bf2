"""The module that ``transformers.Trainer`` optimises when training with the VQGAN loss: the tokenizer
(:class:`~mdlm.tokenizers.vqgan.VQGANForImages`, or the small :class:`~mdlm.tokenizers.image.VQModelForImages`: anything
with ``encoder`` / ``quantizer`` / ``decoder`` / ``last_layer_weight``) plus its training-only parts (patch discriminator, frozen perceptual
net), with the loss of :mod:`mdlm.tokenizers.vqgan_losses`. Checkpoints hold all of it (so a run resumes with its
discriminator); the published tokenizer is ``module.vq`` alone.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.func import functional_call

from .image import VQModelForImages, codebook_usage
from .vqgan import VQGANForImages
from .vqgan_losses import PatchDiscriminator, VQGANLossArguments, adaptive_weight, hinge_d_loss, load_perceptual

Tensor = torch.Tensor


class VQGANTrainingModule(nn.Module):
    """``forward(pixel_values, step)`` → (loss, logs): generator and discriminator losses summed (see
    :mod:`mdlm.tokenizers.vqgan_losses` for why one backward pass trains both)."""

    def __init__(self, vq: VQGANForImages | VQModelForImages, args: VQGANLossArguments):
        super().__init__()
        self.vq, self.args = vq, args
        cfg = vq.config
        self.perceptual = load_perceptual(args.perceptual_model, cfg.in_channels, cfg.image_size) if (
            args.perceptual_model and args.perceptual_weight > 0) else None
        self.discriminator = (
            PatchDiscriminator(cfg.in_channels, args.disc_channels, args.disc_layers) if args.disc_weight > 0 else None
        )

    def _reconstruction_loss(self, x: Tensor, rec: Tensor, logs: dict[str, float]) -> Tensor:
        a = self.args
        l1, l2 = (rec - x).abs().mean(), (rec - x).pow(2).mean()
        loss = a.l1_weight * l1 + a.l2_weight * l2
        logs.update(rec_l1=float(l1.detach()), rec_mse=float(l2.detach()))
        if self.perceptual is not None:
            p = self.perceptual(rec, x)
            loss = loss + a.perceptual_weight * p
            logs["perceptual"] = float(p.detach())
        return loss

    def _adversarial(self, x: Tensor, rec: Tensor, rec_loss: Tensor, logs: dict[str, float]) -> Tensor:
        """λ·w_d·L_G + L_D (both hinge-GAN terms, VQGAN eq. 5-7)."""
        d = self.discriminator
        frozen = {n: p.detach() for n, p in d.named_parameters()} | dict(d.named_buffers())
        g_loss = -functional_call(d, frozen, (rec,)).float().mean()  # gradient to the generator only
        lam = adaptive_weight(rec_loss, g_loss, self.vq.last_layer_weight) if self.training else rec_loss.new_ones(())
        d_loss = hinge_d_loss(d(x.detach()).float(), d(rec.detach()).float())  # gradient to D only
        logs.update(g_adv=float(g_loss.detach()), d_loss=float(d_loss.detach()), adaptive_weight=float(lam))
        return lam * self.args.disc_weight * g_loss + d_loss

    def forward(self, pixel_values: Tensor, step: int = 0) -> tuple[Tensor, dict[str, float]]:
        x = pixel_values  # (B, C, H, W) in [-1, 1]
        q = self.vq.quantizer(self.vq.encoder(x))
        rec = self.vq.decoder(q.quantized.to(x.dtype)).float()  # (B, C, H, W)
        logs: dict[str, float] = {}
        rec_loss = self._reconstruction_loss(x.float(), rec, logs)
        loss = rec_loss + self.vq.config.commitment_cost * q.commitment_loss
        logs.update(commit=float(q.commitment_loss.detach()), code_ppl=codebook_usage(q.codes, self.vq.codebook_size)["perplexity"],
                    restarts=float(getattr(self.vq.quantizer, "last_restarts", 0)))
        if self.discriminator is not None and step >= self.args.disc_start_step:
            loss = loss + self._adversarial(x, rec, rec_loss, logs)
        return loss, logs
