"""VQGAN-style image tokenizer for colour images: diffusers' convolutional ``Encoder`` / ``Decoder`` (the blocks of
diffusers' ``VQModel``: GroupNorm-SiLU ResNet blocks, stride-2 downsampling per block but the last, optional
mid-block attention) around one of three quantisers (``quantizer``):

* ``"fsq"`` (default) — Finite Scalar Quantization, Mentzer et al. 2023 (no codebook to collapse);
* ``"l2ema"`` — EMA codebook on l2-normalised low-dimensional codes (ViT-VQGAN, Yu et al. 2021 §3.2);
* ``"ema"`` — EMA codebook, Euclidean (van den Oord et al. 2017 app. A.1; Razavi et al. 2019).

64×64 RGB with ``block_out_channels`` of length 3 → a 16×16 grid of codes (downsampling 2^(3-1) = 4). The model is
the tokenizer only; the training losses (L1/L2, perceptual, patch-GAN; Esser, Rombach & Ommer 2021, "Taming
Transformers", §3.1-3.2) live in :mod:`mdlm.tokenizers.vqgan_losses`. How it compares with the small conv VQ-VAE of
:mod:`mdlm.tokenizers.image` (the measured default for 64×64): ``docs/images/tokenizer.md``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
from transformers import PretrainedConfig, PreTrainedModel

from .image import VQTokenizerMixin, build_quantizer

try:  # transformers >= 5: init helpers that skip tensors already loaded from a checkpoint
    from transformers import initialization as hf_init
except ImportError:  # pragma: no cover
    hf_init = nn.init  # type: ignore[assignment]


Tensor = torch.Tensor
QUANTIZERS = ("fsq", "l2ema", "ema")


class VQGANConfig(PretrainedConfig):
    """Shape of :class:`VQGANForImages`. The latent grid is ``image_size / 2**(len(block_out_channels) - 1)``."""

    model_type = "mdlm_vqgan"

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 64,
        block_out_channels: list[int] | tuple[int, ...] = (64, 128, 128),
        layers_per_block: int = 1,
        norm_num_groups: int = 32,
        mid_block_add_attention: bool = False,
        quantizer: str = "fsq",
        fsq_levels: list[int] | tuple[int, ...] = (8, 5, 5, 5),
        codebook_size: int = 1024,
        embedding_dim: int = 16,
        commitment_cost: float = 0.25,
        ema_decay: float = 0.99,
        ema_epsilon: float = 1e-5,
        dead_code_threshold: float = 1.0,
        **kwargs: Any,
    ):
        self.in_channels, self.image_size = int(in_channels), int(image_size)
        self.block_out_channels = [int(c) for c in block_out_channels]
        self.layers_per_block, self.norm_num_groups = int(layers_per_block), int(norm_num_groups)
        self.mid_block_add_attention = bool(mid_block_add_attention)
        self.quantizer = str(quantizer)
        self.fsq_levels = [int(v) for v in fsq_levels]
        self.codebook_size = math.prod(self.fsq_levels) if self.quantizer == "fsq" else int(codebook_size)
        self.embedding_dim = len(self.fsq_levels) if self.quantizer == "fsq" else int(embedding_dim)
        self.commitment_cost, self.ema_decay, self.ema_epsilon = float(commitment_cost), float(ema_decay), float(ema_epsilon)
        self.dead_code_threshold = float(dead_code_threshold)
        self._validate()
        super().__init__(**kwargs)

    def _validate(self) -> None:
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {', '.join(QUANTIZERS)}, got {self.quantizer!r}")
        if not self.block_out_channels:
            raise ValueError("block_out_channels needs at least one entry")
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError(f"every block_out_channels entry must be divisible by norm_num_groups={self.norm_num_groups}")
        if self.image_size % self.downsample:
            raise ValueError(f"image_size {self.image_size} is not divisible by the downsampling {self.downsample}")
        if self.codebook_size < 2:
            raise ValueError(f"codebook_size must be ≥ 2, got {self.codebook_size}")

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def latent_size(self) -> int:
        return self.image_size // self.downsample


class VQGANForImages(VQTokenizerMixin, PreTrainedModel):
    """Encoder → quantiser → decoder; the :class:`mdlm.tokenizers.image.ImageTokenizer` interface (images in [-1, 1],
    codes (B, h, w) int64). ``forward`` returns the plain VQ loss (MSE + β·commitment); the VQGAN training loss is
    :class:`mdlm.tokenizers.vqgan_losses.VQGANLoss`."""

    config_class = VQGANConfig
    base_model_prefix = "vqgan"
    main_input_name = "pixel_values"

    def __init__(self, config: VQGANConfig):
        super().__init__(config)
        try:
            from diffusers.models.autoencoders.vae import Decoder, Encoder
        except ImportError as e:
            raise ImportError("the VQGAN tokenizer is built from diffusers' blocks: pip install diffusers "
                              "(or the project's [images] extra)") from e

        n = len(config.block_out_channels)
        common = dict(block_out_channels=tuple(config.block_out_channels), layers_per_block=config.layers_per_block,
                      norm_num_groups=config.norm_num_groups, mid_block_add_attention=config.mid_block_add_attention)
        self.encoder = Encoder(in_channels=config.in_channels, out_channels=config.embedding_dim,
                               down_block_types=("DownEncoderBlock2D",) * n, double_z=False, **common)
        self.quantizer = build_quantizer(config)
        self.decoder = Decoder(in_channels=config.embedding_dim, out_channels=config.in_channels,
                               up_block_types=("UpDecoderBlock2D",) * n, **common)
        self.post_init()


try:  # let AutoConfig / AutoModel resolve model_type "mdlm_vqgan"
    from transformers import AutoConfig, AutoModel

    AutoConfig.register(VQGANConfig.model_type, VQGANConfig)
    AutoModel.register(VQGANConfig, VQGANForImages)
except (ValueError, ImportError):  # pragma: no cover - already registered
    pass
