"""Several captioned image sets as one training set of the text-image MDM: ``--dataset A,B,C``.

The FIRST set is the task: its class names are the model's classes and its ``test`` split is the validation split
(so the validation ELBO and the classifier metrics stay on one held-out set, e.g. emoji's). Every LATER set only
adds training images — its ``train`` and ``test`` rows alike — with

  * no class: the class slot holds [MASK], the null condition that class dropout already trains, so the model
    learns p(image | caption) from them. (An "other" class was the alternative; it would add a class that
    ``--class-id all`` samples and that no emoji classifier knows.)
  * its caption's first clause (the text before the first ``, . ; : ! ? ( [ —``): tuxpaint's descriptions are
    sentences ("An albino peahen (a female peafowl, or peacock)" → "An albino peahen"). An added caption that is
    still over the text budget drops its image (counted and printed); a first-set caption over the budget stays
    an error.

Example (the exports of ``python -m mdlm.data.image_sources export``):
``--dataset .data/emoji64.npz,.data/openclipart64.npz,.data/tuxpaint64.npz`` → 3,439 + 7,093 + 802 training images, less 2 added captions over 32 tokens (measured)
(validation: emoji's 342).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch
from datasets import Dataset, DatasetDict

from .images import dataset_to_tensors
from .subsets import subset_indices

Tensor = torch.Tensor
SEP = ","
_CLAUSE_END = re.compile(r"\s*[,.;:!?(\[—–]")


@dataclass
class CaptionedImages:
    """One split in memory: images, labels (−1 = no class) and captions, and which rows came from an added set."""

    pixels: Tensor  # (N, C, H, W) float32 in [-1, 1]
    labels: Tensor  # (N,) int64
    captions: list[str]
    added: Tensor  # (N,) bool

    def __len__(self) -> int:
        return len(self.captions)

    def select(self, idx: Tensor) -> CaptionedImages:
        """Rows ``idx`` (K,) long, in that order."""
        return CaptionedImages(self.pixels[idx], self.labels[idx], [self.captions[int(i)] for i in idx], self.added[idx])


def from_split(ds: Dataset, added: bool = False) -> CaptionedImages:
    """A split with ``pixel_values``, ``label`` and ``caption`` columns → :class:`CaptionedImages`."""
    x, y = dataset_to_tensors(ds)  # (N, C, H, W), (N,)
    return CaptionedImages(x, y, [str(c) for c in ds["caption"]], torch.full((len(y),), added))


def concat(parts: list[CaptionedImages]) -> CaptionedImages:
    return CaptionedImages(torch.cat([p.pixels for p in parts]), torch.cat([p.labels for p in parts]),
                           [c for p in parts for c in p.captions], torch.cat([p.added for p in parts]))


def first_clause(caption: str) -> str:
    """The caption up to its first clause break (the whole caption when that would leave nothing)."""
    head = _CLAUSE_END.split(caption.strip(), maxsplit=1)[0].strip()
    return head or caption.strip()


def dataset_names(spec: str) -> list[str]:
    """``"A,B,C"`` → ``["A", "B", "C"]`` (ValueError on an empty entry)."""
    names = [s.strip() for s in spec.split(SEP)]
    if not all(names):
        raise ValueError(f"--dataset {spec!r} has an empty entry; give comma-separated data sets, e.g. emoji,openclipart")
    return names


def load_sets(spec: str, image_size: int | None, channels: int) -> list[DatasetDict]:
    """Every data set of ``spec`` with captions (ValueError naming the first one that is missing or captionless)."""
    from .text_image_data import load_captioned

    sets = []
    for name in dataset_names(spec):
        if name.endswith(".npz") and not os.path.isfile(name):
            raise ValueError(f"{name}: no such file (in --dataset {spec!r}); write it with "
                             "`python -m mdlm.data.image_sources export SOURCE OUT.npz`")
        sets.append(load_captioned(name, image_size, channels))
    return sets


def mixture(sets: list[DatasetDict], max_train: int | None = None) -> tuple[dict[str, CaptionedImages], list[str]]:
    """``{"train", "test"}`` and the class names (see the module docstring); ``max_train`` keeps N training images
    of the first set, a seeded random draw (:func:`mdlm.data.subsets.subset_indices`; the added sets stay whole)."""
    first = sets[0]
    class_names = list(first["train"].features["label"].names)
    train = from_split(first["train"])
    idx = subset_indices(len(train), max_train)
    parts = [train if idx is None else train.select(idx)]
    for dd in sets[1:]:
        for split in dd.values():
            if len(split):
                p = from_split(split, added=True)
                parts.append(CaptionedImages(p.pixels, torch.full_like(p.labels, -1),
                                             [first_clause(c) for c in p.captions], p.added))
    shapes = {tuple(p.pixels.shape[1:]) for p in parts}
    if len(shapes) > 1:
        raise ValueError(f"the data sets give images of different shapes {sorted(shapes)}; export them at one --size")
    return {"train": concat(parts), "test": from_split(first["test"])}, class_names


def drop_overlong(images: CaptionedImages, tokenizer, text_budget: int) -> tuple[CaptionedImages, int]:
    """Drop the added-set rows whose caption is more than ``text_budget`` tokens; returns the rest and the count
    dropped (first-set rows are kept: their over-long captions stay an error downstream)."""
    lengths = torch.tensor([len(t) for t in tokenizer(images.captions, add_special_tokens=False)["input_ids"]])  # (N,)
    drop = images.added & (lengths > text_budget)  # (N,)
    return images.select(torch.nonzero(~drop).flatten()), int(drop.sum())


def mirrored(images: CaptionedImages, skip: str) -> CaptionedImages:
    """The rows followed by the horizontal mirrors of those whose caption does not match ``skip``
    (mdlm.data.image_augment); a mirror keeps its row's label, caption and origin."""
    from .image_augment import mirror_mask, with_mirrors

    keep = mirror_mask(images.captions, len(images), skip)  # (N,)
    pixels, labels, src = with_mirrors(images.pixels, images.labels, keep)
    return CaptionedImages(pixels, labels, [images.captions[int(i)] for i in src], images.added[src])


__all__ = ["CaptionedImages", "concat", "dataset_names", "drop_overlong", "first_clause", "from_split", "load_sets",
           "mirrored", "mixture"]
