"""Horizontal-flip augmentation of the image MDM's training set (``recipes/train_image.py --hflip true``).

MaskGIT (Chang et al. 2022, §4.1 "random horizontal flip") and MUSE (Chang et al. 2023) train with random
horizontal flips. The MDM here trains on VQ codes that are encoded once, and the codes of a mirrored image are not
the mirrored codes, so the mirror of every training image is *encoded beside it*: the training set doubles, the
validation split is never flipped (its ELBO stays comparable across runs).

A mirror can contradict its caption ("rightwards hand", "leftwards arrow") or show a wrong picture (a country's
flag mirrored is no flag). Images whose caption matches ``hflip_skip`` (a case-insensitive regular expression;
default :data:`DEFAULT_HFLIP_SKIP`: direction words and flags — 457 of the 3,781 emoji) are not mirrored; text
inside symbols is mirrored as on ImageNet. Rows without captions (class-only training) are all mirrored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

Tensor = torch.Tensor

DEFAULT_HFLIP_SKIP = r"\b(left|right|clockwise|anticlockwise|counterclockwise|flag)"


@dataclass
class AugmentArguments:
    hflip: bool = field(default=False, metadata={
        "help": "encode each training image and its horizontal mirror (2× training tokens; validation never flipped)"})
    hflip_skip: str = field(default=DEFAULT_HFLIP_SKIP, metadata={
        "help": "regex (case-insensitive): training images whose caption matches are not mirrored ('' = mirror all)"})

    def __post_init__(self) -> None:
        try:
            re.compile(self.hflip_skip)
        except re.error as e:
            raise ValueError(f"--hflip_skip {self.hflip_skip!r} is not a regular expression: {e}") from None


def hflip(pixels: Tensor) -> Tensor:
    """Mirror images left ↔ right: (N, C, H, W) → (N, C, H, W)."""
    return pixels.flip(-1)


def mirror_mask(captions: Sequence[str] | None, n: int, skip: str) -> Tensor:
    """(n,) bool: True where the image may be mirrored (its caption does not match ``skip``; all when there are
    no captions or ``skip`` is empty)."""
    if not captions or not skip:
        return torch.ones(n, dtype=torch.bool)
    pattern = re.compile(skip, re.IGNORECASE)
    return torch.tensor([pattern.search(c or "") is None for c in captions], dtype=torch.bool)


def with_mirrors(pixels: Tensor, labels: Tensor, keep: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The images followed by the mirrors of those where ``keep`` (N,) is True.
    (N, C, H, W), (N,) → (N + M, C, H, W), (N + M,), and the source row of each output row (N + M,)."""
    src = torch.cat([torch.arange(len(labels)), torch.nonzero(keep).flatten()])  # (N + M,)
    flipped = hflip(pixels[keep])  # (M, C, H, W)
    return torch.cat([pixels, flipped]), labels[src], src


__all__ = ["DEFAULT_HFLIP_SKIP", "AugmentArguments", "hflip", "mirror_mask", "with_mirrors"]
