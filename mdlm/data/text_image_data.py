"""Captioned image data for the text- and class-conditioned image MDM (:mod:`mdlm.data.text_image`).

Any DatasetDict with the columns ``pixel_values`` (C, H, W) in [-1, 1], ``label`` (a ClassLabel) and ``caption``
(str) works: the emoji / openclipart / tuxpaint sources, their ``.npz`` exports, or a folder of images with a
``metadata.jsonl`` of ``{"file_name": "<class>/<name>.png", "caption": "..."}`` rows (tests/rgb_fixtures.py writes
one), all read by :func:`mdlm.data.images.load_image_dataset`. Rows for the trainer: :class:`TextImageRows` +
:class:`TextImageCollator` (class / caption dropout for classifier-free guidance).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from datasets import DatasetDict

from .images import encode_images
from .text_image import TextImageLayout, caption_token_ids, text_image_sequences

Tensor = torch.Tensor


def load_image_set(dataset: str, image_size: int | None, channels: int) -> DatasetDict:
    """``imagefolder:PATH`` / a folder path (64 px by default; captions from its metadata.jsonl, class = sub-folder),
    or a named data set / ``.npz`` export — all through :func:`mdlm.data.images.load_image_dataset`."""
    from .images import load_image_dataset

    folder = dataset.split(":", 1)[1] if dataset.startswith("imagefolder:") else dataset
    if os.path.isdir(folder):
        return load_image_dataset(folder, image_size or 64, channels)
    return load_image_dataset(dataset, image_size, channels)


def load_captioned(dataset: str, image_size: int | None, channels: int) -> DatasetDict:
    """:func:`load_image_set`, which must give a ``caption`` column (ValueError otherwise)."""
    dd = load_image_set(dataset, image_size, channels)
    if "caption" not in dd["train"].column_names:
        raise ValueError(f"{dataset} has no captions (a 'caption' column or a metadata.jsonl): drop --captions")
    return dd


@dataclass
class TextImageTokens:
    """Every split as one (N, 1 + budget + h·w) id matrix, with the layout and caption tokenizer that made it."""

    layout: TextImageLayout
    tokenizer: object
    class_names: list[str]
    splits: dict[str, Tensor]


def build_text_image_tokens(vq, data: DatasetDict, tokenizer, text_budget: int, batch_size: int = 512,
                            progress: bool = False) -> TextImageTokens:
    """Encode every split's images with ``vq`` and its captions with ``tokenizer`` into sequences (a caption over
    the budget raises ValueError naming it)."""
    from .text_image_mix import from_split

    class_names = list(data["train"].features["label"].names)
    splits = {name: from_split(ds) for name, ds in data.items()}
    return encode_captioned(vq, splits, class_names, tokenizer, text_budget, batch_size, progress)


def encode_captioned(vq, splits: dict, class_names: list[str], tokenizer, text_budget: int, batch_size: int = 512,
                     progress: bool = False) -> TextImageTokens:
    """``{split: CaptionedImages}`` (mdlm.data.text_image_mix; label −1 = no class → [MASK] in the class slot) →
    :class:`TextImageTokens` (a caption over the budget raises ValueError naming it)."""
    layout = TextImageLayout.from_tokenizer(tokenizer, int(vq.codebook_size), len(class_names), text_budget)
    out = {}
    for name, part in splits.items():
        codes = encode_images(vq, part.pixels, batch_size, progress)  # (N, h, w)
        captions = caption_token_ids(tokenizer, part.captions, layout)  # (N, budget)
        out[name] = text_image_sequences(codes, part.labels, captions, layout)
    return TextImageTokens(layout, tokenizer, class_names, out)


class TextImageRows(torch.utils.data.Dataset):
    """Fixed-length rows for :class:`TextImageCollator`: ``input_ids`` (L,), ``prompt_mask`` = ``cond_mask`` =
    the condition prefix (never masked, never scored; all of it → [MASK] under the trainer's joint dropout), and
    ``droppable`` (training rows: the collator may drop the class or the caption alone)."""

    def __init__(self, input_ids: Tensor, layout: TextImageLayout, droppable: bool):
        self.input_ids = input_ids  # (N, L) long
        self.cond = torch.zeros(input_ids.shape[1], dtype=torch.bool)  # (L,)
        self.cond[: layout.prefix_len] = True
        self.droppable = droppable

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.input_ids[i], "prompt_mask": self.cond, "cond_mask": self.cond,
                "droppable": self.droppable}


def drop_parts(ids: Tensor, layout: TextImageLayout, u: Tensor, class_p: float, caption_p: float) -> Tensor:
    """Per-row dropout of one condition part: u (B,) uniform; u < class_p → class slot [MASK];
    class_p ≤ u < class_p + caption_p → caption slots [MASK]. (B, L) → (B, L)."""
    drop_class = u < class_p  # (B,)
    drop_caption = (u >= class_p) & (u < class_p + caption_p)  # (B,)
    pos = torch.arange(ids.shape[1], device=ids.device)  # (L,)
    class_slot = pos == 0
    caption_slots = (pos >= 1) & (pos < layout.prefix_len)
    where = (drop_class[:, None] & class_slot) | (drop_caption[:, None] & caption_slots)  # (B, L)
    return ids.masked_fill(where, layout.mask_id)


class TextImageCollator:
    """MDMCollator (fixed length, pads nothing) + dropout of the class alone (``class_dropout``) or the caption
    alone (``caption_dropout``) on droppable rows, so the model learns p(image | caption), p(image | class) and —
    through the trainer's ``cond_dropout`` of the whole prefix — p(image). Seeded; a resumed run draws new
    dropout choices (the masking itself stays exactly resumable)."""

    def __init__(self, layout: TextImageLayout, class_dropout: float, caption_dropout: float, seed: int = 0):
        from ..training.collator import MDMCollator

        if min(class_dropout, caption_dropout) < 0 or class_dropout + caption_dropout > 1:
            raise ValueError(f"class_dropout {class_dropout} and caption_dropout {caption_dropout} must be ≥ 0 "
                             "with a sum ≤ 1")
        self.base = MDMCollator(pad_token_id=layout.pad_id)
        self.layout, self.class_p, self.caption_p = layout, class_dropout, caption_dropout
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, features: list[dict]) -> dict[str, Tensor]:
        batch = self.base(features)
        drop = torch.tensor([bool(f.get("droppable", False)) for f in features])  # (B,)
        if bool(drop.any()):
            u = torch.rand(len(features), generator=self.generator).masked_fill(~drop, 1.0)  # (B,)
            batch["input_ids"] = drop_parts(batch["input_ids"], self.layout, u, self.class_p, self.caption_p)
        return batch


__all__ = ["TextImageCollator", "TextImageRows", "TextImageTokens", "build_text_image_tokens", "drop_parts", "encode_captioned",
           "load_captioned", "load_image_set"]
