"""Prompts and class names → condition rows of a text-image checkpoint (``train_image.py --captions``).

    rows = condition_rows(info, tokenizer, prompts=["red apple"], class_ids=None, num_samples=8)
    out = generate_conditioned(model, info.layout, vq, rows.labels, rows.captions, config, generator)

A row's condition is its class (or none) and its caption (or none); an empty prompt ``""`` is no caption, so
``--prompt ""`` without a class is the unconditional model (the prefix is all [MASK], as under dropout).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..cli import UserError
from ..data.text_image import TextImageLayout, caption_token_ids
from .image import ImageModelInfo

Tensor = torch.Tensor


@dataclass
class ConditionRows:
    labels: Tensor  # (B,) class id or −1
    captions: Tensor | None  # (B, text_budget) model ids, or None (a class-only layout)
    row_names: list[str]  # one per distinct condition (B = len(row_names) · num_samples, condition-major)
    prompts: list[str] | None = None  # (B,) the prompt text of each image, or None (no prompts given)


def load_caption_tokenizer(model_dir: str, info: ImageModelInfo):
    """The caption tokenizer a text-image checkpoint names (its ``image_caption_tokenizer`` dir)."""
    from transformers import AutoTokenizer

    if not info.caption_tokenizer:
        raise ValueError(f"{model_dir} is a text-image checkpoint without image_caption_tokenizer in its config")
    path = info.caption_tokenizer if os.path.isabs(info.caption_tokenizer) else os.path.join(model_dir, info.caption_tokenizer)
    if not os.path.isfile(os.path.join(path, "tokenizer_config.json")):
        raise ValueError(f"the checkpoint's caption tokenizer {path!r} is missing")
    return AutoTokenizer.from_pretrained(path)


def resolve_classes(values: Sequence[str], class_names: Sequence[str]) -> list[int]:
    """``--class`` values (a class name, case-insensitive, or its number) → class ids; UserError listing the names."""
    lookup = {str(n).lower(): i for i, n in enumerate(class_names)}
    ids = []
    for v in values:
        if str(v).lower() in lookup:
            ids.append(lookup[str(v).lower()])
        elif str(v).isdigit() and int(v) < len(class_names):
            ids.append(int(v))
        else:
            shown = ", ".join(map(str, class_names[:12])) + (" …" if len(class_names) > 12 else "")
            raise UserError(f"--class {v!r} is not a class of this model (its classes: {shown})")
    return ids


def condition_rows(info: ImageModelInfo, tokenizer, prompts: Sequence[str] | None, class_ids: Sequence[int] | None,
                   num_samples: int) -> ConditionRows:
    """``num_samples`` rows per condition. Prompts and classes pair up one to one, or one of them is shared by
    all (one class for every prompt, or one prompt for every class); neither = unconditional."""
    prompts, class_ids = list(prompts or []), list(class_ids or [])
    if prompts and not isinstance(info.layout, TextImageLayout):
        raise UserError("this image checkpoint was trained without captions; use --class / --class-id")
    n = max(len(prompts), len(class_ids), 1)
    if (prompts and len(prompts) not in (1, n)) or (class_ids and len(class_ids) not in (1, n)):
        raise UserError(f"{len(prompts)} prompts and {len(class_ids)} classes: give as many of each, or one of either")
    conds_p = (prompts * n if len(prompts) == 1 else prompts) or [None] * n
    conds_c = (class_ids * n if len(class_ids) == 1 else class_ids) or [-1] * n
    labels = torch.as_tensor(conds_c, dtype=torch.long).repeat_interleave(num_samples)  # (B,)
    captions = None  # class-only rows of a text-image model: every caption slot [MASK]
    if prompts and isinstance(info.layout, TextImageLayout):
        try:
            captions = caption_token_ids(tokenizer, [p or "" for p in conds_p], info.layout)  # (n, budget)
        except ValueError as e:
            raise UserError(str(e)) from None
        captions = captions.repeat_interleave(num_samples, dim=0)  # (B, budget)
    names = [" | ".join(x for x in (info.class_names[c] if c >= 0 else "", f'"{p}"' if p else "") if x)
             or "unconditional" for p, c in zip(conds_p, conds_c)]
    texts = [p or "" for p in conds_p for _ in range(num_samples)] if prompts else None  # (B,)
    return ConditionRows(labels, captions, names, texts)


__all__ = ["ConditionRows", "condition_rows", "load_caption_tokenizer", "resolve_classes"]
