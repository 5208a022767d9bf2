"""Image tokenizers: a small convolutional VQ-VAE (trained here) and a wrapper of a pretrained diffusers
``VQModel``, both exposing one interface (:class:`ImageTokenizer`):

    codes  = tok.encode(images)   # (B, C, H, W) floats in [-1, 1]  ->  (B, h, w) int64 in [0, K)
    images = tok.decode(codes)    # (B, h, w)                        ->  (B, C, H, W) in [-1, 1]
    tok.codebook_size, tok.latent_shape, tok.image_size, tok.num_channels

VQ-VAE: van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete Representation Learning".
  * Nearest-neighbour quantisation z_q = e_k, k = argmin_j ||z_e - e_j||² (eq. 1-2).
  * Straight-through gradient to the encoder: z_q ← z_e + sg(z_q - z_e) (§3.2).
  * Loss = reconstruction + β ||z_e - sg(e)||² (eq. 3, commitment term; β = 0.25).
  * The codebook is not learned by gradient but by exponential moving averages (appendix A.1 of the
    same paper; Razavi et al. 2019, VQ-VAE-2, eq. 5-7): N_k ← γN_k + (1-γ)n_k,
    m_k ← γm_k + (1-γ)Σ_{i: k_i=k} z_i, e_k = m_k / Ñ_k with Laplace-smoothed Ñ_k.
  * Dead-code restart (Dhariwal et al. 2020, Jukebox §3.3 / Williams et al. 2020): a code whose EMA
    count N_k falls below ``dead_code_threshold`` is moved onto a random encoder output of the batch.
  * Codebook data-initialisation: on the first training batch every code is set to a random encoder
    output (a cheap stand-in for k-means init).

``load_image_tokenizer(path)`` reads ``path/config.json`` and returns the right class.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from transformers import PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from ..weights import pytorch_default_init

try:  # transformers >= 5: init helpers that skip tensors already loaded from a checkpoint
    from transformers import initialization as hf_init
except ImportError:  # pragma: no cover - older transformers
    hf_init = nn.init  # type: ignore[assignment]


Tensor = torch.Tensor


@runtime_checkable
class ImageTokenizer(Protocol):
    """What the image side of mdlm needs from a tokenizer (VQ-VAE here or a diffusers VQModel)."""

    codebook_size: int
    num_channels: int
    image_size: int
    latent_shape: tuple[int, int]

    def encode(self, images: Tensor) -> Tensor: ...  # (B, C, H, W) -> (B, h, w)

    def decode(self, codes: Tensor) -> Tensor: ...  # (B, h, w) -> (B, C, H, W)


# ----------------------------------------------------------------------------------------------
# shared checks and statistics


def check_images(images: Tensor, num_channels: int, image_size: int) -> None:
    """Raise ValueError unless ``images`` is (B, num_channels, image_size, image_size)."""
    if images.dim() != 4 or images.shape[1] != num_channels or tuple(images.shape[2:]) != (image_size, image_size):
        raise ValueError(
            f"expected images of shape (B, {num_channels}, {image_size}, {image_size}), got {tuple(images.shape)}"
            " (resize / convert channels first, e.g. with mdlm.data.images.load_image_folder)"
        )


def check_codes(codes: Tensor, codebook_size: int, latent_shape: tuple[int, int]) -> Tensor:
    """Validate codes and return them as (B, h, w) int64; a flat (B, h·w) tensor is reshaped."""
    h, w = latent_shape
    if codes.dim() == 2 and codes.shape[1] == h * w:
        codes = codes.reshape(codes.shape[0], h, w)
    if codes.dim() != 3 or tuple(codes.shape[1:]) != (h, w):
        raise ValueError(f"expected codes of shape (B, {h}, {w}) or (B, {h * w}), got {tuple(codes.shape)}")
    if codes.dtype.is_floating_point:
        raise ValueError(f"codes must be integers, got {codes.dtype}")
    if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= codebook_size):
        raise ValueError(
            f"codes must lie in [0, {codebook_size}); got min {int(codes.min())}, max {int(codes.max())}"
        )
    return codes.long()


def codebook_usage(codes: Tensor, codebook_size: int) -> dict[str, float]:
    """Usage of a codebook by a set of codes (any shape).

    ``fraction_used``: share of the K codes that occur at least once; ``perplexity``: exp of the
    entropy of the empirical code distribution (K when all codes are equally used, 1 when one is).
    """
    counts = torch.bincount(codes.reshape(-1).long(), minlength=codebook_size).double()  # (K,)
    p = counts / counts.sum().clamp_min(1.0)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()
    return {
        "fraction_used": float((counts > 0).double().mean()),
        "codes_used": int((counts > 0).sum()),
        "perplexity": float(torch.exp(entropy)),
    }


# ----------------------------------------------------------------------------------------------
# configuration


class VQConfig(PretrainedConfig):
    """Shape and training constants of :class:`VQModelForImages`.

    ``hidden_channels`` has one entry per stride-2 downsampling, so the latent grid is
    ``image_size / 2**len(hidden_channels)`` on a side (28 → 7 with two levels).
    """

    model_type = "mdlm_vq"

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        hidden_channels: list[int] | tuple[int, ...] = (64, 128),
        num_res_blocks: int = 2,
        res_channels: int | None = None,
        embedding_dim: int = 64,
        codebook_size: int = 512,
        commitment_cost: float = 0.25,
        ema_decay: float = 0.99,
        ema_epsilon: float = 1e-5,
        dead_code_threshold: float = 1.0,
        quantizer: str = "ema",
        fsq_levels: list[int] | tuple[int, ...] = (8, 5, 5, 5),
        **kwargs: Any,
    ):
        self.quantizer = str(quantizer)  # "ema" | "l2ema" | "fsq" (mdlm.tokenizers.quantizers)
        self.fsq_levels = [int(v) for v in fsq_levels]
        if self.quantizer == "fsq":  # the code grid fixes K and the latent width
            codebook_size, embedding_dim = math.prod(self.fsq_levels), len(self.fsq_levels)
        if self.quantizer not in ("ema", "l2ema", "fsq"):
            raise ValueError(f"quantizer must be one of ema, l2ema, fsq, got {self.quantizer!r}")
        self.in_channels = int(in_channels)
        self.image_size = int(image_size)
        self.hidden_channels = [int(c) for c in hidden_channels]
        self.num_res_blocks = int(num_res_blocks)
        self.res_channels = int(res_channels) if res_channels else max(self.hidden_channels[-1] // 2, 1)
        self.embedding_dim = int(embedding_dim)
        self.codebook_size = int(codebook_size)
        self.commitment_cost = float(commitment_cost)
        self.ema_decay = float(ema_decay)
        self.ema_epsilon = float(ema_epsilon)
        self.dead_code_threshold = float(dead_code_threshold)
        if not self.hidden_channels:
            raise ValueError("hidden_channels needs at least one entry (one per downsampling)")
        factor = 2 ** len(self.hidden_channels)
        if self.image_size % factor:
            raise ValueError(
                f"image_size {self.image_size} is not divisible by 2**{len(self.hidden_channels)} = {factor} "
                "(one halving per hidden_channels entry)"
            )
        if self.codebook_size < 2:
            raise ValueError(f"codebook_size must be >= 2, got {self.codebook_size}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        super().__init__(**kwargs)

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** len(self.hidden_channels)


# ----------------------------------------------------------------------------------------------
# building blocks


class ResBlock(nn.Module):
    """x + conv1x1(ReLU(conv3x3(ReLU(x)))) — the residual block of van den Oord 2017 §4.1."""

    def __init__(self, channels: int, hidden: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, h, w)
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class Encoder(nn.Module):
    """(B, C, H, W) → (B, D, H/2^L, W/2^L): 3×3 conv, L stride-2 4×4 convs, residual blocks, 1×1 to D."""

    def __init__(self, cfg: VQConfig):
        super().__init__()
        ch = cfg.hidden_channels
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.down = nn.ModuleList(
            nn.Conv2d(ch[max(i - 1, 0)], ch[i], 4, stride=2, padding=1) for i in range(len(ch))
        )
        self.res = nn.ModuleList(ResBlock(ch[-1], cfg.res_channels) for _ in range(cfg.num_res_blocks))
        self.conv_out = nn.Conv2d(ch[-1], cfg.embedding_dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv_in(x)  # (B, c0, H, W)
        for down in self.down:
            h = F.relu(down(h))  # halves H, W
        for block in self.res:
            h = block(h)
        return self.conv_out(F.relu(h))  # (B, D, h, w)


class Decoder(nn.Module):
    """Mirror of :class:`Encoder`: (B, D, h, w) → (B, C, H, W) with stride-2 4×4 transposed convs."""

    def __init__(self, cfg: VQConfig):
        super().__init__()
        ch = cfg.hidden_channels
        self.conv_in = nn.Conv2d(cfg.embedding_dim, ch[-1], 3, padding=1)
        self.res = nn.ModuleList(ResBlock(ch[-1], cfg.res_channels) for _ in range(cfg.num_res_blocks))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(ch[i], ch[max(i - 1, 0)], 4, stride=2, padding=1) for i in reversed(range(len(ch)))
        )
        self.conv_out = nn.Conv2d(ch[0], cfg.in_channels, 3, padding=1)

    def forward(self, z: Tensor) -> Tensor:
        h = self.conv_in(z)  # (B, c_L, h, w)
        for block in self.res:
            h = block(h)
        h = F.relu(h)
        for up in self.up:
            h = F.relu(up(h))  # doubles H, W
        return self.conv_out(h)  # (B, C, H, W)


@dataclass
class Quantized:
    quantized: Tensor  # (B, D, h, w) straight-through: forward = e_k, gradient flows to z_e
    codes: Tensor  # (B, h, w) int64
    commitment_loss: Tensor  # scalar ||z_e - sg(e)||² (mean over elements)


class EMAQuantizer(nn.Module):
    """Nearest-neighbour codebook with EMA updates and dead-code restart (see module docstring).

    All state lives in persistent buffers, so a saved model reloads bit-identically:
    ``embedding`` (K, D), ``ema_cluster_size`` (K,), ``ema_embed_sum`` (K, D), ``initialized`` ().
    Under ``torch.distributed`` the per-step counts and sums are all-reduced and the restarted codes
    are broadcast from rank 0, so every rank keeps the same codebook.
    """

    def __init__(self, codebook_size: int, dim: int, decay: float, eps: float, dead_code_threshold: float):
        super().__init__()
        self.codebook_size, self.dim = codebook_size, dim
        self.decay, self.eps, self.dead_code_threshold = decay, eps, dead_code_threshold
        self.register_buffer("embedding", torch.empty(codebook_size, dim).uniform_(-1 / codebook_size, 1 / codebook_size))
        self.register_buffer("ema_cluster_size", torch.zeros(codebook_size))
        self.register_buffer("ema_embed_sum", self.embedding.clone())
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        self.last_restarts = 0  # codes restarted at the last training step (for logging)

    def nearest(self, flat: Tensor) -> Tensor:
        """(N, D) → (N,) index of the nearest codebook vector (squared Euclidean, eq. 2)."""
        e = self.embedding  # (K, D)
        # ||z||² - 2 z·e + ||e||²; ||z||² is the same for every code and does not change the argmin
        d = e.pow(2).sum(1)[None, :] - 2.0 * flat @ e.t()  # (N, K)
        return d.argmin(dim=1)

    def codes_of(self, z: Tensor) -> Tensor:
        """(B, D, h, w) encoder outputs → (B, h, w) nearest codes; never changes the codebook."""
        b, d, h, w = z.shape
        return self.nearest(z.float().permute(0, 2, 3, 1).reshape(-1, d)).view(b, h, w)

    def lookup(self, codes: Tensor) -> Tensor:
        """(B, h, w) codes → (B, D, h, w) codebook vectors."""
        return F.embedding(codes, self.embedding).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: Tensor) -> Quantized:
        with torch.autocast(device_type=z.device.type, enabled=False):  # distances and EMA in float32
            return self._forward(z.float())

    def _forward(self, z: Tensor) -> Quantized:
        b, d, h, w = z.shape  # (B, D, h, w)
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)  # (N, D), N = B·h·w
        if self.training and not bool(self.initialized):
            self._data_init(flat.detach())
        codes = self.nearest(flat.detach())  # (N,)
        e = self.embedding[codes].view(b, h, w, d).permute(0, 3, 1, 2)  # (B, D, h, w), before the update
        if self.training:
            self._ema_update(flat.detach(), codes)
        commitment = F.mse_loss(z, e)  # e is a buffer: no gradient reaches the codebook
        quantized = z + (e - z).detach()  # straight-through estimator
        return Quantized(quantized=quantized, codes=codes.view(b, h, w), commitment_loss=commitment)

    @torch.no_grad()
    def _data_init(self, flat: Tensor) -> None:
        pick = _random_rows(flat, self.codebook_size)  # (K, D)
        self.embedding.copy_(pick)
        self.ema_embed_sum.copy_(pick)
        self.ema_cluster_size.fill_(1.0)
        self.initialized.fill_(True)
        _broadcast(self.embedding, self.ema_embed_sum, self.ema_cluster_size)

    @torch.no_grad()
    def _ema_update(self, flat: Tensor, codes: Tensor) -> None:
        k = self.codebook_size
        counts = torch.bincount(codes, minlength=k).to(flat.dtype)  # (K,) n_k
        sums = torch.zeros(k, self.dim, dtype=flat.dtype, device=flat.device).index_add_(0, codes, flat)  # (K, D)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        g = self.decay
        self.ema_cluster_size.mul_(g).add_(counts, alpha=1 - g)  # N_k
        self.ema_embed_sum.mul_(g).add_(sums, alpha=1 - g)  # m_k
        n = self.ema_cluster_size.sum()
        smoothed = (self.ema_cluster_size + self.eps) / (n + k * self.eps) * n  # Laplace smoothing
        self.embedding.copy_(self.ema_embed_sum / smoothed[:, None])  # e_k = m_k / Ñ_k
        dead = self.ema_cluster_size < self.dead_code_threshold  # (K,)
        self.last_restarts = int(dead.sum())
        if self.last_restarts:
            fresh = _random_rows(flat, self.last_restarts)  # (n_dead, D)
            self.embedding[dead] = fresh
            self.ema_embed_sum[dead] = fresh
            self.ema_cluster_size[dead] = 1.0
            _broadcast(self.embedding, self.ema_embed_sum, self.ema_cluster_size)


def _random_rows(x: Tensor, n: int) -> Tensor:
    """n rows of x drawn uniformly (with replacement when x has fewer rows), plus tiny noise so that
    duplicates separate."""
    idx = torch.randint(0, x.shape[0], (n,), device=x.device) if x.shape[0] < n else torch.randperm(x.shape[0], device=x.device)[:n]
    rows = x[idx]
    return rows + 1e-4 * rows.std().clamp_min(1e-6) * torch.randn_like(rows)


def _broadcast(*tensors: Tensor) -> None:
    if dist.is_available() and dist.is_initialized():
        for t in tensors:
            dist.broadcast(t, src=0)


# ----------------------------------------------------------------------------------------------
# the model


@dataclass
class VQOutput(ModelOutput):
    """``loss`` = ``reconstruction_loss`` + β ``commitment_loss``; ``perplexity`` of this batch's codes."""

    loss: Tensor | None = None
    reconstruction: Tensor | None = None  # (B, C, H, W), not clamped
    codes: Tensor | None = None  # (B, h, w)
    reconstruction_loss: Tensor | None = None
    commitment_loss: Tensor | None = None
    perplexity: Tensor | None = None


def build_quantizer(config) -> nn.Module:
    """The quantiser named by ``config.quantizer`` (a :class:`VQConfig` or a VQGAN config): ``ema`` →
    :class:`EMAQuantizer`; ``l2ema`` / ``fsq`` → :mod:`mdlm.tokenizers.quantizers`."""
    from .quantizers import FSQuantizer, L2EMAQuantizer

    q = getattr(config, "quantizer", "ema")
    if q == "fsq":
        return FSQuantizer(config.fsq_levels)
    cls = L2EMAQuantizer if q == "l2ema" else EMAQuantizer
    return cls(config.codebook_size, config.embedding_dim, config.ema_decay, config.ema_epsilon, config.dead_code_threshold)


class VQTokenizerMixin:
    """The tokenizer interface and plain VQ loss of an encoder → quantiser → decoder ``PreTrainedModel`` whose config
    has ``in_channels``, ``image_size``, ``latent_size``, ``codebook_size`` and ``commitment_cost`` (shared by
    :class:`VQModelForImages` and :class:`mdlm.tokenizers.vqgan.VQGANForImages`)."""

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's default init for convs / linears / norms; the EMA codebook as :func:`init_ema_quantizer`."""
        if not pytorch_default_init(module) and isinstance(module, EMAQuantizer):
            init_ema_quantizer(module)

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def num_channels(self) -> int:
        return self.config.in_channels

    @property
    def image_size(self) -> int:
        return self.config.image_size

    @property
    def latent_shape(self) -> tuple[int, int]:
        return (self.config.latent_size, self.config.latent_size)

    @property
    def last_layer_weight(self) -> Tensor:
        """The decoder's output conv weight (where the VQGAN loss's adaptive GAN weight is measured)."""
        return self.decoder.conv_out.weight

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """(B, C, H, W) in [-1, 1] → (B, h, w) int64 codes. Never updates the codebook."""
        check_images(images, self.num_channels, self.image_size)
        return self.quantizer.codes_of(self.encoder(images.to(self.device, self.dtype)))  # (B, h, w)

    @torch.no_grad()
    def decode(self, codes: Tensor, clamp: bool = True) -> Tensor:
        """(B, h, w) or (B, h·w) codes → (B, C, H, W) images, clamped to [-1, 1] unless ``clamp=False``."""
        codes = check_codes(codes, self.codebook_size, self.latent_shape).to(self.device)
        x = self.decoder(self.quantizer.lookup(codes).to(self.dtype))
        return x.clamp(-1.0, 1.0) if clamp else x

    def forward(self, pixel_values: Tensor, return_dict: bool | None = None, **kwargs: Any) -> VQOutput:
        """The plain VQ-VAE loss, MSE + β·commitment (van den Oord et al. 2017, eq. 3 with the EMA codebook)."""
        check_images(pixel_values, self.num_channels, self.image_size)
        q = self.quantizer(self.encoder(pixel_values))
        recon = self.decoder(q.quantized.to(pixel_values.dtype))  # (B, C, H, W)
        recon_loss = F.mse_loss(recon.float(), pixel_values.float())
        return VQOutput(
            loss=recon_loss + self.config.commitment_cost * q.commitment_loss,
            reconstruction=recon,
            codes=q.codes,
            reconstruction_loss=recon_loss.detach(),
            commitment_loss=q.commitment_loss.detach(),
            perplexity=torch.tensor(codebook_usage(q.codes, self.codebook_size)["perplexity"]),
        )


def init_ema_quantizer(module: EMAQuantizer) -> None:
    """Codebook U(−1/K, 1/K), zero cluster sizes, EMA sums = the codebook (unless loaded from weights)."""
    k = module.codebook_size
    hf_init.uniform_(module.embedding, -1 / k, 1 / k)
    hf_init.zeros_(module.ema_cluster_size)
    if not getattr(module.ema_embed_sum, "_is_hf_initialized", False):
        module.ema_embed_sum.copy_(module.embedding)


class VQModelForImages(VQTokenizerMixin, PreTrainedModel):
    """Convolutional VQ-VAE with an EMA codebook (van den Oord et al. 2017; see module docstring).

    ``forward(pixel_values)`` returns a :class:`VQOutput` with the training loss; ``encode`` /
    ``decode`` are the tokenizer interface (inputs and outputs in [-1, 1]).
    """

    config_class = VQConfig
    base_model_prefix = "vq"
    main_input_name = "pixel_values"

    def __init__(self, config: VQConfig):
        super().__init__(config)
        self.encoder = Encoder(config)
        self.quantizer = build_quantizer(config)
        self.decoder = Decoder(config)
        self.post_init()


# ----------------------------------------------------------------------------------------------
# a pretrained diffusers VQModel behind the same interface


class DiffusersVQTokenizer(nn.Module):
    """Wraps ``diffusers.VQModel`` (e.g. the VQ-VAE of a VQ-diffusion / LDM pipeline) saved in a local
    directory. ``encode``: encoder → quant_conv → nearest code; ``decode``: codebook lookup →
    post_quant_conv → decoder. Images in [-1, 1] as for :class:`VQModelForImages`.
    """

    def __init__(self, vq: nn.Module):
        super().__init__()
        self.vq = vq
        cfg = vq.config
        self.codebook_size = int(cfg.num_vq_embeddings)
        self.num_channels = int(cfg.in_channels)
        self.image_size = int(cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0])
        factor = 2 ** (len(cfg.block_out_channels) - 1)  # one downsampling per block but the last
        self.latent_shape = (self.image_size // factor, self.image_size // factor)

    @classmethod
    def from_pretrained(cls, path: str) -> DiffusersVQTokenizer:
        try:
            from diffusers import VQModel
        except ImportError as e:
            raise ImportError(
                f"{path} holds a diffusers VQModel; loading it needs the 'diffusers' package (pip install diffusers)"
            ) from e
        return cls(VQModel.from_pretrained(path, use_safetensors=True)).eval()

    @property
    def device(self) -> torch.device:
        return next(self.vq.parameters()).device

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        check_images(images, self.num_channels, self.image_size)
        h = self.vq.encode(images.to(self.device)).latents  # (B, D, h, w)
        b, d, hh, ww = h.shape
        flat = h.permute(0, 2, 3, 1).reshape(-1, d)  # (N, D)
        codes = torch.cdist(flat, self.vq.quantize.embedding.weight).argmin(dim=1)  # (N,)
        return codes.view(b, hh, ww)

    @torch.no_grad()
    def decode(self, codes: Tensor, clamp: bool = True) -> Tensor:
        codes = check_codes(codes, self.codebook_size, self.latent_shape).to(self.device)
        quant = F.embedding(codes, self.vq.quantize.embedding.weight).permute(0, 3, 1, 2).contiguous()  # (B, D, h, w)
        spatial = quant if getattr(self.vq.config, "norm_type", "group") == "spatial" else None
        x = self.vq.decoder(self.vq.post_quant_conv(quant), spatial)
        return x.clamp(-1.0, 1.0) if clamp else x


# ----------------------------------------------------------------------------------------------
# loading


def load_image_tokenizer(path: str, device: str | torch.device | None = None):
    """Load an image tokenizer from a local directory, picking the class from its ``config.json``:
    ``model_type == "mdlm_vq"`` → :class:`VQModelForImages`; ``"mdlm_vqgan"`` →
    :class:`mdlm.tokenizers.vqgan.VQGANForImages`; a diffusers config with
    ``_class_name == "VQModel"`` (also in a ``vqvae/`` subfolder of a pipeline) →
    :class:`DiffusersVQTokenizer`. Returned in eval mode."""
    cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path) and os.path.isfile(os.path.join(path, "vqvae", "config.json")):
        path = os.path.join(path, "vqvae")
        cfg_path = os.path.join(path, "config.json")
    if not os.path.isfile(cfg_path):
        raise ValueError(f"no config.json in {path!r}: not an image tokenizer directory")
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    from ..weights import check_finite_model, check_weights_dir
    from .vqgan import VQGANConfig, VQGANForImages

    ours = {VQConfig.model_type: VQModelForImages, VQGANConfig.model_type: VQGANForImages}.get(cfg.get("model_type"))
    diffusers = cfg.get("_class_name") == "VQModel"
    if not (ours or diffusers):
        kind = cfg.get("model_type") or cfg.get("_class_name") or "unknown"
        raise ValueError(
            f"{path!r} is not an image tokenizer (config says {kind!r}; expected mdlm_vq, mdlm_vqgan or a diffusers VQModel)"
        )
    check_weights_dir(path, what="image tokenizer")  # safetensors only, whole files
    tok: VQModelForImages | VQGANForImages | DiffusersVQTokenizer
    if ours:
        tok = ours.from_pretrained(path, use_safetensors=True)
    else:
        tok = DiffusersVQTokenizer.from_pretrained(path)
    check_finite_model(tok, path)
    tok.eval()
    return tok.to(device) if device is not None else tok


def save_pretrained_atomic(model: PreTrainedModel, out_dir: str) -> None:
    """``save_pretrained`` into ``out_dir/.staging`` then move each file into ``out_dir`` with
    ``os.replace`` (each move atomic; config.json last, so a config.json implies whole weights)."""
    import shutil

    staging = os.path.join(out_dir, ".staging-final")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging)
    model.save_pretrained(staging, safe_serialization=True)
    names = sorted(os.listdir(staging), key=lambda n: n == "config.json")  # config.json last
    for name in names:
        os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
    shutil.rmtree(staging, ignore_errors=True)


try:  # let AutoConfig / AutoModel resolve model_type "mdlm_vq"
    from transformers import AutoConfig, AutoModel

    AutoConfig.register(VQConfig.model_type, VQConfig)
    AutoModel.register(VQConfig, VQModelForImages)
except (ValueError, ImportError):  # pragma: no cover - already registered
    pass
