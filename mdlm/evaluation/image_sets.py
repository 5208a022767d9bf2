"""Image sets named on a command line, for ``eval/fid.py --real X --fake Y``.

A spec is one of
  * ``NAME:SPLIT`` — a data set of :func:`mdlm.data.images.load_image_dataset` (``emoji``, ``fashion-mnist``, an
    exported ``.npz``, an image folder) and its ``train`` / ``test`` / ``all`` images, with labels and captions;
    ``test-a`` / ``test-b``: the two disjoint seeded halves of ``test`` (:mod:`mdlm.evaluation.reference_halves`),
    the unpaired real-vs-real floor (``--fake NAME:test-b --real NAME:test-a``) that the ablation tables use;
  * ``train`` / ``test`` — that split of the default data set (``--dataset``);
  * ``FILE.npz`` — generated samples (:func:`mdlm.data.images.save_samples_npz`: ``images`` [+ ``labels``,
    ``captions``]) or an exported data set (all its images).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from ..data.images import dataset_to_tensors, load_image_dataset, load_samples_npz
from ..data.subsets import subset_indices
from .reference_halves import split_halves

SPLITS = ("train", "test", "all", "test-a", "test-b")
HALVES = {"test-a": 0, "test-b": 1}


@dataclass
class ImageSet:
    images: torch.Tensor  # (N, C, H, W) float32 in [-1, 1]
    labels: torch.Tensor | None  # (N,) int64: the true or the requested class
    captions: list[str] | None  # (N,) the caption / the prompt
    description: str
    generated: bool = False  # a .npz of samples (its captions are prompts), not a data set

    @property
    def prompts(self) -> list[str] | None:
        """The captions the images were generated from (None for a data set's own images)."""
        return self.captions if self.generated else None

    def sample(self, n: int | None, seed: int = 0) -> ImageSet:
        """``n`` images drawn at random without replacement (seeded; all when ``n`` is None or ≥ the set): data
        sets stored in class order (emoji) make "the first n" a few classes only."""
        idx = subset_indices(len(self.images), n, seed)
        if idx is None:
            return self
        pick = (lambda v: [v[i] for i in idx.tolist()] if isinstance(v, list) else v[idx])
        cut = (lambda v: pick(v) if v is not None else None)
        return ImageSet(self.images[idx], cut(self.labels), cut(self.captions),
                        f"{self.description} (random {n}, seed {seed})", self.generated)


def _from_datasets(ds, split: str, what: str) -> ImageSet:
    parts = ["train", "test"] if split == "all" else ["test"] if split in HALVES else [split]
    xs, ys, caps = [], [], []
    for s in parts:
        d = ds[s]
        if split in HALVES:
            d = d.select(split_halves(len(d))[HALVES[split]].tolist())
        x, y = dataset_to_tensors(d)
        xs.append(x)
        ys.append(y)
        caps += list(d["caption"]) if "caption" in d.column_names else [""] * len(x)
    has_caps = any(caps)
    return ImageSet(torch.cat(xs), torch.cat(ys), caps if has_caps else None, f"{what}:{split}")


def _from_npz(path: str) -> ImageSet:
    with np.load(path, allow_pickle=False) as z:
        exported = "split" in z.files and "class_names" in z.files
        captions = [str(c) for c in z["captions"]] if "captions" in z.files else None
    if exported:
        return _from_datasets(load_image_dataset(path, channels=_npz_channels(path)), "all", path)
    x, y = load_samples_npz(path)
    if captions is not None and len(captions) != len(x):
        raise ValueError(f"{path}: {len(x)} images but {len(captions)} captions")
    return ImageSet(x, y, captions, path, generated=True)


def _npz_channels(path: str) -> int:
    with np.load(path, allow_pickle=False) as z:
        return int(z["images"].shape[1])


def load_image_set(spec: str, default_dataset: str = "fashion-mnist", channels: int | None = None,
                   image_size: int | None = None) -> ImageSet:
    """The images of ``spec`` (see module docstring); ``channels`` / ``image_size`` (e.g. the classifier's) are
    checked for named data sets and used to convert a folder."""
    if spec in ("train", "test", *HALVES):
        name, split = default_dataset, spec
    elif ":" in spec and spec.rsplit(":", 1)[1] in SPLITS:
        name, split = spec.rsplit(":", 1)
    elif spec.endswith(".npz"):
        if not os.path.isfile(spec):
            raise ValueError(f"{spec!r} does not exist")
        return _from_npz(spec)
    else:
        raise ValueError(f"image set {spec!r}: use NAME:train|test|all|test-a|test-b, train, test, or a .npz file")
    if name.endswith(".npz") and os.path.isfile(name):
        channels = _npz_channels(name)
    ds = load_image_dataset(name, image_size, channels=channels if channels is not None else _default_channels(name))
    return _from_datasets(ds, split, name)


def _default_channels(name: str) -> int:
    from ..data.image_sources import SOURCES

    return 3 if name.lower().replace("_", "-") in SOURCES else 1
