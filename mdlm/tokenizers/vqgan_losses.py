"""The VQGAN training loss (Esser, Rombach & Ommer 2021, "Taming Transformers for High-Resolution Image Synthesis",
§3.1-3.2, eq. 4-7), each term switchable by its weight:

    L = w_1·|x - x̂|₁ + w_2·(x - x̂)² + w_p·P(x, x̂) + β·commitment + λ·w_d·L_G        (generator, eq. 4 + 6)
    L_D = ½ E[relu(1 - D(x))] + ½ E[relu(1 + D(x̂))]                                     (discriminator, hinge)

* P: a perceptual distance on the feature maps of a network trained here (no VGG/LPIPS weights exist offline): the
  ReLU outputs of an :class:`mdlm.evaluation.classifier.ImageClassifierCNN` (``recipes/train_classifier.py``),
  each unit-normalised over channels, squared distance summed over channels, averaged over positions and summed over
  layers (LPIPS, Zhang et al. 2018, eq. 1, with unit weights instead of learned ones).
* D: a PatchGAN discriminator (Isola et al. 2017, pix2pix); L_G = -E[D(x̂)]; used from ``disc_start_step`` on.
* λ: the adaptive weight of VQGAN eq. 7, ‖∇_{G_L} L_rec‖ / (‖∇_{G_L} L_G‖ + 10⁻⁴) at the decoder's last layer G_L.

Generator and discriminator are updated by one backward pass of one optimizer: the generator's adversarial term
calls D with detached parameters (no gradient to D), D's hinge loss sees a detached x̂ (no gradient to G).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


Tensor = torch.Tensor


@dataclass
class VQGANLossArguments:
    """Weights of the VQGAN loss terms (0 switches a term off) and the discriminator's shape."""

    l1_weight: float = field(default=1.0, metadata={"help": "weight of |x - x̂|"})
    l2_weight: float = field(default=0.0, metadata={"help": "weight of (x - x̂)²"})
    perceptual_model: str | None = field(
        default=None, metadata={"help": "dir of a recipes/train_classifier.py model on the same images (optional)"}
    )
    perceptual_weight: float = field(default=1.0, metadata={"help": "weight of the perceptual distance (needs --perceptual_model)"})
    disc_weight: float = field(default=0.0, metadata={"help": "weight of the patch-GAN term (0 = no discriminator)"})
    disc_start_step: int = field(default=0, metadata={"help": "optimizer step at which the GAN terms start"})
    disc_layers: int = field(default=2, metadata={"help": "stride-2 layers of the patch discriminator"})
    disc_channels: int = field(default=64, metadata={"help": "channels of its first layer"})

    def __post_init__(self) -> None:
        for name in ("l1_weight", "l2_weight", "perceptual_weight", "disc_weight", "disc_start_step"):
            if getattr(self, name) < 0:
                raise ValueError(f"--{name} must be ≥ 0, got {getattr(self, name)}")
        if self.disc_layers < 1 or self.disc_channels < 1:
            raise ValueError("--disc_layers and --disc_channels must be ≥ 1")
        if self.perceptual_model and not os.path.isdir(self.perceptual_model):
            raise ValueError(f"--perceptual_model {self.perceptual_model!r} is not a directory")
        if self.l1_weight == self.l2_weight == 0 and not (self.perceptual_model and self.perceptual_weight):
            raise ValueError("every reconstruction term is off: set --l1_weight, --l2_weight or a perceptual model")


class PatchDiscriminator(nn.Module):
    """PatchGAN (pix2pix): 4×4 convs (the first and ``layers - 1`` more of stride 2), BatchNorm, LeakyReLU(0.2) →
    (B, 1, h', w') real/fake logits, one per overlapping patch (64×64 input, 2 layers → 14×14 logits)."""

    def __init__(self, in_channels: int = 3, channels: int = 64, layers: int = 2):
        super().__init__()
        mods: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = channels
        for i in range(1, layers + 1):
            c_out = channels * min(2**i, 8)
            stride = 2 if i < layers else 1
            mods += [nn.Conv2d(c, c_out, 4, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2, True)]
            c = c_out
        mods.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) → (B, 1, h', w') real/fake logits per patch
        return self.net(x)


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """½ E[relu(1 - D(x))] + ½ E[relu(1 + D(x̂))] (the hinge loss of VQGAN's discriminator)."""
    return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())


def adaptive_weight(rec_loss: Tensor, g_loss: Tensor, last_layer: Tensor, max_weight: float = 1e4) -> Tensor:
    """VQGAN eq. 7: λ = ‖∇_{G_L} L_rec‖ / (‖∇_{G_L} L_G‖ + δ), δ = 10⁻⁴, clamped to [0, max_weight], no gradient."""
    g_rec = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    g_adv = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    return (g_rec.norm() / (g_adv.norm() + 1e-4)).clamp(0.0, max_weight).detach()


class PerceptualLoss(nn.Module):
    """LPIPS-style distance on the ReLU feature maps of a frozen classifier (see module docstring)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        convs = getattr(net, "convs", None)
        if not isinstance(convs, nn.Sequential):
            raise ValueError("the perceptual model needs a `convs` nn.Sequential (an ImageClassifierCNN)")
        self.net = net.eval().requires_grad_(False)
        self.taps = [i for i, m in enumerate(convs) if isinstance(m, nn.ReLU)]

    def train(self, mode: bool = True) -> PerceptualLoss:  # the frozen net stays in eval mode (BatchNorm statistics)
        super().train(mode)
        self.net.eval()
        return self

    def _features(self, x: Tensor) -> list[Tensor]:
        feats, h = [], x
        for i, m in enumerate(self.net.convs):
            h = m(h)
            if i in self.taps:
                feats.append(F.normalize(h.float(), dim=1))  # (B, c, h, w), unit vectors over channels
        return feats

    def forward(self, x: Tensor, y: Tensor) -> Tensor:  # images (B, C, H, W) → scalar
        fy = self._features(y)
        return sum((a - b).pow(2).sum(1).mean() for a, b in zip(self._features(x), fy))


def load_perceptual(path: str, in_channels: int, image_size: int) -> PerceptualLoss:
    """The classifier saved at ``path`` (safetensors only) as a :class:`PerceptualLoss`; its input shape must match."""
    from ..evaluation.classifier import ImageClassifierCNN
    from ..weights import check_weights_dir

    check_weights_dir(path, what="perceptual model")
    net = ImageClassifierCNN.from_pretrained(path, use_safetensors=True)
    cfg = net.config
    if (cfg.in_channels, cfg.image_size) != (in_channels, image_size):
        raise ValueError(
            f"--perceptual_model {path} takes {cfg.in_channels}×{cfg.image_size}² images, the tokenizer "
            f"{in_channels}×{image_size}²"
        )
    return PerceptualLoss(net)
