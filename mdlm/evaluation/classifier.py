"""A small CNN image classifier (Fashion-MNIST by default; 64×64 RGB emoji categories by config) whose penultimate features feed the
classifier-FID of :mod:`mdlm.evaluation.fid`, and whose predictions give the class accuracy of
class-conditional samples.

Architecture: ``len(channels)`` blocks of [3×3 conv → BatchNorm → ReLU], the first ``num_pools`` followed by
2×2 max-pooling (Fashion-MNIST: 2 pools, 28 → 14 → 7; 64×64 RGB: 4 pools, 64 → 4), then flatten → Linear(feature_dim) → ReLU (= the *features*) →
dropout → Linear(num_classes).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import ImageClassifierOutput

from ..weights import pytorch_default_init

try:  # transformers >= 5: init helpers that skip tensors already loaded from a checkpoint
    from transformers import initialization as hf_init
except ImportError:  # pragma: no cover
    hf_init = nn.init  # type: ignore[assignment]


Tensor = torch.Tensor


class ImageClassifierConfig(PretrainedConfig):
    model_type = "mdlm_image_classifier"

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        num_classes: int = 10,
        channels: list[int] | tuple[int, ...] = (16, 32, 64),
        num_pools: int = 2,
        feature_dim: int = 128,
        dropout: float = 0.3,
        class_names: list[str] | None = None,
        **kwargs: Any,
    ):
        self.in_channels = int(in_channels)
        self.image_size = int(image_size)
        self.num_classes = int(num_classes)
        self.channels = [int(c) for c in channels]
        self.num_pools = int(num_pools)
        self.feature_dim = int(feature_dim)
        self.dropout = float(dropout)
        self.class_names = list(class_names) if class_names else [str(i) for i in range(self.num_classes)]
        if self.num_pools > len(self.channels):
            raise ValueError(f"num_pools {self.num_pools} > number of conv blocks {len(self.channels)}")
        if self.image_size % 2**self.num_pools:
            raise ValueError(f"image_size {self.image_size} is not divisible by 2**num_pools = {2**self.num_pools}")
        if len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")
        super().__init__(**kwargs)


class ImageClassifierCNN(PreTrainedModel):
    """See module docstring. ``features(x)`` → (B, feature_dim); ``forward`` → logits (+ loss)."""

    config_class = ImageClassifierConfig
    base_model_prefix = "cnn"
    main_input_name = "pixel_values"

    def __init__(self, config: ImageClassifierConfig):
        super().__init__(config)
        blocks: list[nn.Module] = []
        c_in = config.in_channels
        for i, c in enumerate(config.channels):
            blocks += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            if i < config.num_pools:
                blocks.append(nn.MaxPool2d(2))
            c_in = c
        self.convs = nn.Sequential(*blocks)
        side = config.image_size // 2**config.num_pools
        self.fc = nn.Linear(c_in * side * side, config.feature_dim)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.feature_dim, config.num_classes)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        pytorch_default_init(module)

    def check_images(self, x: Tensor) -> None:
        c, s = self.config.in_channels, self.config.image_size
        if x.dim() != 4 or tuple(x.shape[1:]) != (c, s, s):
            raise ValueError(f"the classifier takes images of shape (B, {c}, {s}, {s}), got {tuple(x.shape)}")

    def features(self, pixel_values: Tensor) -> Tensor:
        """(B, C, H, W) in [-1, 1] → (B, feature_dim) penultimate activations (post-ReLU)."""
        self.check_images(pixel_values)
        h = self.convs(pixel_values)  # (B, c, H/4, W/4)
        return F.relu(self.fc(h.flatten(1)))  # (B, feature_dim)

    def forward(self, pixel_values: Tensor, labels: Tensor | None = None, **kwargs: Any) -> ImageClassifierOutput:
        logits = self.head(self.dropout(self.features(pixel_values)))  # (B, num_classes)
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)


@torch.no_grad()
def predict(model: ImageClassifierCNN, images: Tensor, batch_size: int = 1000) -> Tensor:
    """(N, C, H, W) → (N,) predicted class (model put in eval mode)."""
    model.eval()
    dev = next(model.parameters()).device
    return torch.cat(
        [model(images[i : i + batch_size].to(dev)).logits.argmax(-1).cpu() for i in range(0, images.shape[0], batch_size)]
    )


def accuracy(model: ImageClassifierCNN, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    """Share of ``images`` classified as ``labels`` (for samples: their requested class)."""
    return class_accuracies(model, images, labels, batch_size)[0]


def per_class_recall(predicted: Tensor, labels: Tensor, num_classes: int) -> np.ndarray:
    """(num_classes,) share of each class's images predicted as that class (NaN for a class with no images);
    their mean is the balanced accuracy."""
    y = labels.cpu().long()
    hits = torch.bincount(y[predicted.cpu().long() == y], minlength=num_classes).double()  # (K,)
    total = torch.bincount(y, minlength=num_classes).double()  # (K,)
    return (hits / total).numpy()


def class_accuracies(model: ImageClassifierCNN, images: Tensor, labels: Tensor,
                     batch_size: int = 1000) -> tuple[float, float]:
    """(accuracy, balanced accuracy) of ``images`` w.r.t. ``labels``, from one prediction pass: the share classified
    as their label, and the mean per-class recall over the classes present (:func:`per_class_recall`) — the figure
    to read when the classes are imbalanced (emoji's test split is 56 % People & Body)."""
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{images.shape[0]} images but {labels.shape[0]} labels")
    pred = predict(model, images, batch_size)  # (N,)
    plain = float((pred == labels.cpu().long()).double().mean())
    return plain, float(np.nanmean(per_class_recall(pred, labels, model.config.num_classes)))


def load_classifier(path: str, device: str | torch.device | None = None) -> ImageClassifierCNN:
    model = ImageClassifierCNN.from_pretrained(path).eval()
    return model.to(device) if device is not None else model


try:
    from transformers import AutoConfig, AutoModelForImageClassification

    AutoConfig.register(ImageClassifierConfig.model_type, ImageClassifierConfig)
    AutoModelForImageClassification.register(ImageClassifierConfig, ImageClassifierCNN)
except (ValueError, ImportError):  # pragma: no cover
    pass
