"""Class- and text-conditioned (or unconditional) image generation with the one confidence sampler.

An image checkpoint (``recipes/train_image.py``) is an ``MDLMForMaskedLM`` whose config carries

    image_layout       {"codebook_size": K, "num_classes": C, "mask_id": K + C, "vocab_size": K + C + 1,
                        "latent_shape": [h, w]}   (mdlm.data.images.ImageTokenLayout + the latent grid)
    image_class_names  [C names]
    image_vq           {"path": "vq", "source": ..., "sha256": ...}  — the VQ tokenizer, copied into the
                       checkpoint dir so the checkpoint is self-contained

Canvas (B, 1 + h·w) per row: ``[class token | [MASK]] + [MASK] × h·w``. Only the h·w image positions
are generated (``generate_mask``); the class token is the condition (``cond_mask``): classifier-free
guidance replaces it with [MASK] in the unconditional pass, exactly as label dropout did in training.
An unconditional row starts with [MASK] at the class position and keeps it. Class tokens, [MASK]
and the vocabulary padding are never sampled at an image position (``suppress_tokens``).

A text-image checkpoint (``train_image.py --captions``) has ``image_layout.kind = "text_image"``
(:class:`mdlm.data.text_image.TextImageLayout`: one vocabulary of codes, classes and caption tokens) and
``image_caption_tokenizer`` (its caption tokenizer's dir); its prefix is ``[class] + text_budget caption slots``
and every real condition token there is in ``cond_mask`` (prompts: :mod:`mdlm.pipelines.text_image`).

Sampling goes through :func:`mdlm.sampling.generate` — the same function the text pipeline calls.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..data.images import ImageTokenLayout, check_codebook_size, unit_to_uint8
from ..data.text_image import TextImageLayout, condition_prefix, prefix_len
from ..fonts import label_font
from ..sampling import MDLMGenerationConfig, SampleOutput, generate

Tensor = torch.Tensor
VQ_SUBDIR = "vq"
CAPTION_TOKENIZER_SUBDIR = "caption_tokenizer"


# ----------------------------------------------------------------------------------------------
# what an image checkpoint says about itself


@dataclass(frozen=True)
class ImageModelInfo:
    layout: ImageTokenLayout | TextImageLayout
    latent_shape: tuple[int, int]
    class_names: tuple[str, ...]
    vq_path: str  # relative to the checkpoint dir, or absolute
    vq_sha256: str | None = None
    caption_tokenizer: str | None = None  # text-image checkpoints: the caption tokenizer dir (relative or absolute)

    @property
    def seq_len(self) -> int:
        return prefix_len(self.layout) + self.latent_shape[0] * self.latent_shape[1]


def image_config_fields(
    layout: ImageTokenLayout | TextImageLayout, latent_shape: tuple[int, int], class_names: Sequence[str],
    vq_source: str, vq_sha256: str,
) -> dict[str, Any]:
    """The config attributes that make an ``MDLMConfig`` an image checkpoint (see module docstring); a
    text-image layout also names the caption tokenizer's dir (:data:`CAPTION_TOKENIZER_SUBDIR`)."""
    if len(class_names) != layout.num_classes:
        raise ValueError(f"{len(class_names)} class names for {layout.num_classes} classes")
    fields = {
        "image_layout": {**layout.to_dict(), "latent_shape": [int(latent_shape[0]), int(latent_shape[1])]},
        "image_class_names": [str(n) for n in class_names],
        "image_vq": {"path": VQ_SUBDIR, "source": vq_source, "sha256": vq_sha256},
    }
    if isinstance(layout, TextImageLayout):
        fields["image_caption_tokenizer"] = CAPTION_TOKENIZER_SUBDIR
    return fields


def _layout_from_config(d: dict) -> ImageTokenLayout | TextImageLayout:
    if d.get("kind") == "text_image":
        return TextImageLayout.from_dict(d)
    layout = ImageTokenLayout(int(d["codebook_size"]), int(d["num_classes"]))
    if "mask_id" in d and int(d["mask_id"]) != layout.mask_id:
        raise ValueError(f"image_layout says mask_id {d['mask_id']} but codebook + classes give {layout.mask_id}")
    return layout


def image_model_info(config) -> ImageModelInfo:
    """Read and check the image fields of a model config; ValueError if it is not an image checkpoint
    or its layout disagrees with the model's [MASK] id / vocabulary."""
    d = getattr(config, "image_layout", None)
    if not d:
        raise ValueError("this checkpoint has no image_layout in its config: it is not an image model")
    layout = _layout_from_config(d)
    model_mask = getattr(config, "mask_token_id", None)
    if model_mask is not None and int(model_mask) != layout.mask_id:
        raise ValueError(f"the model's mask_token_id {model_mask} is not the image layout's [MASK] id {layout.mask_id}")
    vocab = getattr(config, "vocab_size", None)
    if vocab is not None and int(vocab) < layout.vocab_size:
        raise ValueError(f"the model's vocabulary ({vocab}) is smaller than the image layout's ({layout.vocab_size})")
    shape = d.get("latent_shape")
    if not shape or len(shape) != 2:
        raise ValueError("image_layout has no latent_shape [h, w]")
    names = getattr(config, "image_class_names", None) or [str(c) for c in range(layout.num_classes)]
    vq = getattr(config, "image_vq", None) or {}
    return ImageModelInfo(layout, (int(shape[0]), int(shape[1])), tuple(names), vq.get("path", VQ_SUBDIR),
                          vq.get("sha256"), getattr(config, "image_caption_tokenizer", None))


def load_image_vq(model_dir: str, info: ImageModelInfo, device: str | torch.device | None = None):
    """The checkpoint's VQ tokenizer (``model_dir/vq`` unless the config names another path), checked
    against the layout: a different codebook size or latent grid raises ValueError naming both."""
    from ..tokenizers.image import load_image_tokenizer

    path = info.vq_path if os.path.isabs(info.vq_path) else os.path.join(model_dir, info.vq_path)
    if not os.path.isdir(path):
        raise ValueError(f"the image checkpoint {model_dir!r} has no VQ tokenizer at {path!r}")
    vq = load_image_tokenizer(path, device=device)
    check_codebook_size(vq.codebook_size, info.layout)
    if tuple(vq.latent_shape) != tuple(info.latent_shape):
        raise ValueError(f"the VQ tokenizer's latent grid is {tuple(vq.latent_shape)} but the model was trained on {info.latent_shape}")
    return vq


# ----------------------------------------------------------------------------------------------
# canvases


def build_image_canvas(layout: ImageTokenLayout | TextImageLayout, labels: Tensor, num_positions: int,
                       captions: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """labels (B,) long, a class id or −1 for no class (+ for a text-image layout, captions (B, text_budget) model
    ids, default none = [MASK]) → (canvas, generate_mask, cond_mask), each (B, prefix + num_positions): the
    condition prefix, then [MASK] at every generated image position. cond_mask = the real condition tokens."""
    if labels.dim() != 1:
        raise ValueError(f"labels must be (B,), got shape {tuple(labels.shape)}")
    if isinstance(layout, TextImageLayout):
        if captions is None:
            captions = torch.full((labels.shape[0], layout.text_budget), layout.mask_id, dtype=torch.long,
                                  device=labels.device)
        if captions.shape != (labels.shape[0], layout.text_budget):
            raise ValueError(f"captions must be (B, {layout.text_budget}), got {tuple(captions.shape)}")
        prefix, cond_prefix = condition_prefix(layout, labels, captions.to(labels.device))  # (B, P) each
    else:
        if captions is not None:
            raise ValueError("this image model has no caption slots (it was trained without --captions)")
        if bool((labels < -1).any()):
            raise ValueError("labels must be class ids ≥ 0 or −1 (unconditional)")
        cond_prefix = (labels >= 0)[:, None]  # (B, 1)
        if bool(cond_prefix.any()):
            layout.class_token(labels[cond_prefix[:, 0]])  # raises ValueError on labels ≥ num_classes
        prefix = torch.where(cond_prefix, labels[:, None] + layout.codebook_size,
                             torch.full_like(labels[:, None], layout.mask_id))  # (B, 1)
    B, P = prefix.shape
    canvas = torch.cat([prefix, torch.full((B, num_positions), layout.mask_id, dtype=torch.long,
                                           device=labels.device)], dim=1)  # (B, P + N)
    generate_mask = torch.zeros_like(canvas, dtype=torch.bool)
    generate_mask[:, P:] = True
    cond_mask = torch.cat([cond_prefix, torch.zeros(B, num_positions, dtype=torch.bool, device=labels.device)], dim=1)
    return canvas, generate_mask, cond_mask


def image_suppress_ids(layout: ImageTokenLayout, model_vocab_size: int) -> list[int]:
    """Ids never sampled at an image position: class tokens, [MASK] and padding rows ≥ layout vocab."""
    return [*layout.suppress_ids, *range(layout.vocab_size, int(model_vocab_size))]


def class_labels(class_ids: Sequence[int] | None, num_samples: int) -> Tensor:
    """``num_samples`` rows per class id, class-major ((B,) long); −1 rows when ``class_ids`` is None."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be ≥ 1, got {num_samples}")
    if class_ids is None:
        return torch.full((num_samples,), -1, dtype=torch.long)
    return torch.as_tensor(list(class_ids), dtype=torch.long).repeat_interleave(num_samples)


# ----------------------------------------------------------------------------------------------
# generation


@dataclass
class ImageSamples:
    images: Tensor  # (B, C, H, W) in [-1, 1], CPU
    labels: Tensor  # (B,) requested class, −1 = unconditional
    sequences: Tensor  # (B, prefix + h·w) final token canvases
    nfe: int  # network evaluations per sequence (CFG counts 2 per step); the max over the sampler batches
    history: list[Tensor] | None = None  # with return_history: (B, 1 + h·w) canvas before/after every step
    positions: int = 0  # token positions run through the network per sequence (SampleOutput.positions), max over batches


def _model_vocab(model: Any) -> int:
    cfg = getattr(model, "config", None)
    v = getattr(cfg, "vocab_size", None)
    if v is None:
        emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
        v = emb.num_embeddings if emb is not None else 0
    return int(v)


@torch.no_grad()
def generate_images(
    model: Any,
    layout: ImageTokenLayout | TextImageLayout,
    vq,
    class_ids: Sequence[int] | None,
    num_samples: int,
    sampler_config: MDLMGenerationConfig,
    generator: torch.Generator | None = None,
    *,
    batch_size: int | None = None,
    callback: Callable | None = None,
    device: str | torch.device | None = None,
) -> ImageSamples:
    """Sample ``num_samples`` images per class of ``class_ids`` (class-major order), or
    ``num_samples`` unconditional images when ``class_ids`` is None, then decode them with ``vq``.

    ``sampler_config`` is the shared :class:`MDLMGenerationConfig` (guidance through ``guidance_scale`` /
    ``guidance_interval``; ``return_history`` keeps every intermediate canvas). ``batch_size`` rows go
    through the sampler at a time (default: all); the generator is consumed batch after batch, so
    the result depends on ``batch_size`` but is deterministic for a given one.
    """
    labels = class_labels(class_ids, num_samples)  # (B,)
    return generate_conditioned(model, layout, vq, labels, None, sampler_config, generator, batch_size=batch_size,
                                callback=callback, device=device)


@torch.no_grad()
def generate_conditioned(
    model: Any,
    layout: ImageTokenLayout | TextImageLayout,
    vq,
    labels: Tensor,
    captions: Tensor | None,
    sampler_config: MDLMGenerationConfig,
    generator: torch.Generator | None = None,
    *,
    batch_size: int | None = None,
    callback: Callable | None = None,
    device: str | torch.device | None = None,
) -> ImageSamples:
    """One image per row of labels (B,) (−1 = no class) and captions (B, text_budget) model ids (None = no
    caption; text-image layouts only), through :func:`mdlm.sampling.generate`, decoded with ``vq``."""
    check_codebook_size(vq.codebook_size, layout)
    h, w = vq.latent_shape
    if device is None:
        device = next(model.parameters()).device if hasattr(model, "parameters") else "cpu"
    labels = labels.to(device)
    canvas, gen_mask, cond_mask = build_image_canvas(layout, labels, h * w, captions)  # (B, L) each
    suppress = image_suppress_ids(layout, _model_vocab(model)) if hasattr(model, "config") else layout.suppress_ids
    bs = batch_size or canvas.shape[0]
    seqs: list[Tensor] = []
    hist: list[list[Tensor]] = []
    nfe = positions = 0
    for i in range(0, canvas.shape[0], bs):  # batches of rows; the sampler is vectorised inside
        out: SampleOutput = generate(
            model,
            canvas[i : i + bs],
            mask_id=layout.mask_id,
            config=sampler_config,
            generate_mask=gen_mask[i : i + bs],
            cond_mask=cond_mask[i : i + bs],
            suppress_tokens=suppress,
            generator=generator,
            callback=callback,
            vocab_size=layout.vocab_size,
        )
        seqs.append(out.sequences)
        nfe = max(nfe, out.nfe)
        positions = max(positions, out.positions)
        if out.history is not None:
            hist.append(out.history)
    sequences = torch.cat(seqs)  # (B, L)
    images = sequences_to_images(vq, sequences, layout)  # (B, C, H, W)
    history = [torch.cat(frames) for frames in zip(*hist)] if hist else None  # (steps+1) × (B, L)
    return ImageSamples(images.float().cpu(), labels.cpu(), sequences.cpu(), nfe, history, positions)


@torch.no_grad()
def sequences_to_images(vq, input_ids: Tensor, layout: ImageTokenLayout | TextImageLayout) -> Tensor:
    """Generated sequences (B, prefix + h·w) → images (B, C, H, W) in [-1, 1]; ValueError if a code position
    still holds [MASK] or a non-code id, or the length does not fit the VQ's latent grid."""
    check_codebook_size(vq.codebook_size, layout)
    h, w = vq.latent_shape
    p = prefix_len(layout)
    if input_ids.dim() != 2 or input_ids.shape[1] != p + h * w:
        raise ValueError(f"expected (B, {p + h * w}) token sequences for a {h}×{w} latent, got {tuple(input_ids.shape)}")
    _, codes = layout.split(input_ids.long())  # (B, h·w)
    return vq.decode(codes.reshape(-1, h, w)).float().cpu()


@torch.no_grad()
def decode_partial_canvas(vq, layout: ImageTokenLayout | TextImageLayout, canvas: Tensor, grey: float = 0.0) -> Tensor:
    """(B, prefix + h·w) canvases that may still hold [MASK] → (B, C, H, W) images in [-1, 1]: masked latent
    cells are decoded as code 0 and then painted ``grey`` over their pixel patch (0 = mid grey)."""
    h, w = vq.latent_shape
    codes = canvas[:, prefix_len(layout):].reshape(-1, h, w)  # (B, h, w)
    masked = (codes < 0) | (codes >= layout.codebook_size)  # (B, h, w): [MASK] (or any non-code id)
    images = vq.decode(codes.masked_fill(masked, 0)).float().cpu()  # (B, C, H, W)
    cover = F.interpolate(masked[:, None].float().cpu(), size=images.shape[-2:], mode="nearest") > 0.5  # (B, 1, H, W)
    return images.masked_fill(cover, grey)


# ----------------------------------------------------------------------------------------------
# PNG output


def tile_images(images: Tensor | np.ndarray, nrow: int, gap: int = 1) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] → (rows·(H+gap)+gap, nrow·(W+gap)+gap, C) uint8, white gaps, row-major;
    missing tiles of the last row stay white. Vectorised: pad each tile, then one reshape."""
    x = unit_to_uint8(images)  # (N, C, H, W)
    n, c, hh, ww = x.shape
    rows = max(1, math.ceil(n / nrow))
    full = np.full((rows * nrow, c, hh + gap, ww + gap), 255, dtype=np.uint8)
    full[:n, :, gap:, gap:] = x
    grid = full.reshape(rows, nrow, c, hh + gap, ww + gap).transpose(0, 3, 1, 4, 2)  # (rows, H+g, nrow, W+g, C)
    grid = grid.reshape(rows * (hh + gap), nrow * (ww + gap), c)
    return np.pad(grid, ((0, gap), (0, gap), (0, 0)), constant_values=255)


def save_labeled_grid(
    images: Tensor | np.ndarray,
    path: str,
    nrow: int,
    row_labels: Sequence[str] | None = None,
    title: str | None = None,
    scale: int | None = None,
) -> None:
    """Write (N, C, H, W) images in [-1, 1] as a PNG grid of ``nrow`` columns, each pixel repeated
    ``scale`` times (default: tiles of at least 48 pixels), with an optional title line on top and a
    label left of each row."""
    from PIL import Image, ImageDraw

    scale = scale or max(2, math.ceil(48 / images.shape[-2]))
    tiles = tile_images(images, nrow)  # (Hg, Wg, C)
    tiles = tiles.repeat(scale, axis=0).repeat(scale, axis=1)
    if tiles.shape[2] == 1:
        tiles = np.repeat(tiles, 3, axis=2)
    font = label_font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(s: str) -> tuple[int, int]:
        box = probe.textbbox((0, 0), s, font=font)
        return box[2] - box[0], box[3] - box[1]

    left = (max(text_size(s)[0] for s in row_labels) + 8) if row_labels else 0
    top = (text_size(title)[1] + 10) if title else 0
    width = max(left + tiles.shape[1], (text_size(title)[0] + 8) if title else 0)
    canvas = Image.new("RGB", (width, top + tiles.shape[0]), (255, 255, 255))
    canvas.paste(Image.fromarray(tiles), (left, top))
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((4, 4), title, fill=(0, 0, 0), font=font)
    if row_labels:
        n_rows = max(1, math.ceil(len(images) / nrow))
        row_h = (tiles.shape[0] - scale) / n_rows
        for r, label in enumerate(list(row_labels)[:n_rows]):
            y = top + scale + r * row_h + row_h / 2 - text_size(label)[1] / 2
            draw.text((4, int(y)), label, fill=(0, 0, 0), font=font)
    tmp = f"{path}.tmp{os.getpid()}.png"
    canvas.save(tmp)
    os.replace(tmp, path)  # never a half-written PNG at ``path``


def frame_indices(num_frames: int, max_frames: int) -> list[int]:
    """At most ``max_frames`` evenly spaced indices of ``num_frames``, first and last included."""
    if num_frames <= max_frames:
        return list(range(num_frames))
    return sorted({round(i * (num_frames - 1) / (max_frames - 1)) for i in range(max_frames)})


def save_steps_strip(
    vq,
    layout: ImageTokenLayout,
    history: list[Tensor],
    rows: Tensor,
    path: str,
    row_labels: Sequence[str] | None = None,
    max_frames: int = 17,
    scale: int | None = None,
) -> None:
    """One row per selected sample (``rows``: (k,) indices into the batch), one column per step:
    the canvas before the first step, then after each step (masked cells grey)."""
    keep = frame_indices(len(history), max_frames)
    frames = torch.stack([history[i][rows] for i in keep])  # (F, k, L)
    n_frames, k, L = frames.shape
    imgs = decode_partial_canvas(vq, layout, frames.reshape(n_frames * k, L).to(_vq_device(vq)))  # (F·k, C, H, W)
    imgs = imgs.reshape(n_frames, k, *imgs.shape[1:]).transpose(0, 1).reshape(k * n_frames, *imgs.shape[1:])
    title = f"canvas over the steps: {', '.join(f'{i}' for i in keep)} (step 0 = all [MASK], grey = masked)"
    save_labeled_grid(imgs, path, nrow=n_frames, row_labels=row_labels, title=title, scale=scale)


def _vq_device(vq) -> torch.device:
    dev = getattr(vq, "device", None)
    return torch.device(dev) if dev is not None else torch.device("cpu")


# ----------------------------------------------------------------------------------------------
# class ids and labels


def parse_class_ids(values: Sequence[str] | None, num_classes: int) -> list[int] | None:
    """``--class-id`` values (ints, or ``all``) → class ids; None = unconditional. Raises UserError
    on a non-integer or an id outside [0, num_classes)."""
    from ..cli import UserError

    if not values:
        return None
    ids: list[int] = []
    for v in values:
        if str(v).lower() == "all":
            ids += list(range(num_classes))
            continue
        try:
            c = int(v)
        except ValueError:
            raise UserError(f"--class-id must be an integer or 'all', got {v!r}") from None
        if not 0 <= c < num_classes:
            raise UserError(f"--class-id {c} is out of range: this model has {num_classes} classes (0..{num_classes - 1})")
        ids.append(c)
    return ids


def class_label(c: int, class_names: Sequence[str]) -> str:
    """Row label of class ``c``: ``"3: Dress"``, or just ``"3"`` when the name is the number."""
    name = str(class_names[c])
    return name if name == str(c) else f"{c}: {name}"


__all__ = [
    "ImageModelInfo",
    "ImageSamples",
    "build_image_canvas",
    "class_label",
    "class_labels",
    "decode_partial_canvas",
    "frame_indices",
    "generate_conditioned",
    "generate_images",
    "image_config_fields",
    "image_model_info",
    "image_suppress_ids",
    "load_image_vq",
    "parse_class_ids",
    "save_labeled_grid",
    "save_steps_strip",
    "sequences_to_images",
    "tile_images",
]
