"""Scoring class-conditional image samples: classifier-FID (Fréchet distance of the features of a
Fashion-MNIST classifier the project trains itself, :mod:`mdlm.evaluation.classifier`) and class accuracy,
against one or more reference image sets whose features are computed once and reused.

References (``REFERENCES``): ``test`` / ``train`` = the real images of that split; ``recon`` = the VQ
reconstructions (encode → decode through the checkpoint's own VQ) of the test images. Samples are decoded
through the same VQ, so against real images every sampler setting sits above the tokenizer's floor;
against ``recon`` a perfect sampler of the tokenizer's code distribution scores ≈ 0 (up to the metric's
sampling noise), so differences between settings show.

Reference points, per reference R, at the sample size of one row (``n_probe`` images):
``vq_reconstructions`` = FID(VQ reconstructions of the first n_probe images of R's split, R) — for ``test``
the tokenizer's floor, for ``recon`` only the metric's noise; ``real_images`` = FID(n_probe real images of
the other split, R) — for ``test`` the metric's noise, for ``recon`` the tokenizer's error.

The metric is NOT the Inception FID of papers (no Inception weights exist offline); its name says so
(``METRIC_NAME``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.images import (
    dataset_to_tensors,
    load_fashion_mnist,
    load_image_dataset,
    save_samples_npz,
)
from ..pipelines import load_for_generation
from ..pipelines.image import (
    ImageModelInfo,
    generate_images,
    image_model_info,
    load_image_vq,
)
from ..pipelines.text import sampler_config_from
from .classifier import accuracy
from .fid import classifier_features, feature_fid

Tensor = torch.Tensor
METRIC_NAME = "classifier-FID (Fashion-MNIST CNN features)"
REFERENCES = ("test", "train", "recon")
RECON_SPLIT = "test"  # ``recon`` = reconstructions of this split
SAMPLER_KEYS = ("sampler", "schedule", "temperature", "choice_temperature", "confidence", "remasking", "cfg_scale",
                "cfg_interval")


def check_dirs(model: str | None, classifier: str | None, flags: tuple[str, str] = ("--model", "--classifier")) -> None:
    """One clear error for a checkpoint / classifier path that is not a directory (named by ``flags``)."""
    for flag, path in zip(flags, (model, classifier)):
        if path is not None and not os.path.isdir(path):
            raise ValueError(f"{flag} {path!r} is not a directory")


def load_reference_data(dataset: str, data_dir: str | None, channels: int = 1, image_size: int | None = None):
    """The image DatasetDict (train/test) of ``dataset`` (``channels`` / ``image_size``: what the classifier takes;
    e.g. 3 and 64 for ``emoji``)."""
    if dataset.lower().replace("_", "-") in ("fashion-mnist", "fmnist"):
        return load_fashion_mnist(data_dir)
    return load_image_dataset(dataset, image_size, channels)


def metric_name(clf) -> str:
    """The FID's name, after the data set the classifier was trained on (``config.trained_on``, written by
    recipes/train_classifier.py); :data:`METRIC_NAME` for Fashion-MNIST and older classifiers."""
    trained_on = getattr(clf.config, "trained_on", None)
    if not trained_on or trained_on.lower().replace("_", "-") in ("fashion-mnist", "fmnist"):
        return METRIC_NAME
    return f"classifier-FID ({trained_on} CNN features)"


# ---- the checkpoint --------------------------------------------------------------------------------


@dataclass
class ImageCheckpoint:
    """An image MDM with its VQ and sampler defaults, ready to sample."""

    path: str
    model: torch.nn.Module
    info: ImageModelInfo
    vq: Any
    defaults: dict[str, Any]
    device: torch.device

    @property
    def vq_key(self) -> str:
        """What identifies the VQ (its SHA-256 when the config records it) for cached reconstructions."""
        return self.info.vq_sha256 or os.path.abspath(os.path.join(self.path, self.info.vq_path))


def load_image_checkpoint(path: str, device: str | torch.device, dtype: torch.dtype | None = None) -> ImageCheckpoint:
    """Model, VQ and generation defaults of an image checkpoint dir (ValueError if it is not one)."""
    check_dirs(path, None, ("image checkpoint", ""))
    loaded = load_for_generation(path, device=str(device), dtype=dtype)
    info = image_model_info(loaded.model.config)
    dev = next(loaded.model.parameters()).device
    vq = load_image_vq(loaded.base_dir, info, device=dev)
    return ImageCheckpoint(path, loaded.model, info, vq, loaded.defaults, dev)


@torch.no_grad()
def reconstruct(vq, images: Tensor, batch_size: int) -> Tensor:
    """(N, C, H, W) in [-1, 1] → their VQ reconstructions (encode → decode), float32 on the CPU."""
    dev = next(vq.parameters()).device if hasattr(vq, "parameters") else torch.device("cpu")
    return torch.cat([vq.decode(vq.encode(images[i : i + batch_size].to(dev))).float().cpu()
                      for i in range(0, images.shape[0], batch_size)])


# ---- reference features ----------------------------------------------------------------------------


class ImageScorer:
    """Classifier features of the reference image sets, computed once and reused for every sample set.

    ``data``: a DatasetDict with ``train`` and ``test`` image splits. Real references are cached by
    split, ``recon`` by the VQ's key (runs sharing a tokenizer share the reconstructions).
    """

    def __init__(self, clf, data, *, max_reference: int | None = None, batch_size: int = 500, dataset: str = ""):
        self.clf, self.data, self.dataset = clf, data, dataset
        self.max_reference, self.batch_size = max_reference, batch_size
        self._images: dict[tuple[str, int | None], Tensor] = {}
        self._feats: dict[str, np.ndarray] = {}
        self._points: dict[tuple[str, str, int], dict[str, float]] = {}

    @property
    def metric(self) -> str:
        """What the FID is computed on (see :func:`metric_name`)."""
        return metric_name(self.clf)

    def images(self, split: str, n: int | None = None) -> Tensor:
        """The first ``n`` (default: ``max_reference``, else all) images of ``split``: (N, C, H, W)."""
        n = self.max_reference if n is None else n
        key = (split, n)
        if key not in self._images:
            ds = self.data[split]
            self._images[key] = dataset_to_tensors(ds.select(range(min(n, len(ds)))) if n else ds)[0]
        return self._images[key]

    def features(self, images: Tensor) -> np.ndarray:
        """(N, C, H, W) → (N, d) classifier features."""
        return classifier_features(self.clf, images, self.batch_size)

    @staticmethod
    def split_of(reference: str) -> str:
        return RECON_SPLIT if reference == "recon" else reference

    def reference_features(self, reference: str, ckpt: ImageCheckpoint | None = None) -> np.ndarray:
        """(N_ref, d) features of ``reference`` (``recon`` needs the checkpoint whose VQ reconstructs)."""
        if reference not in REFERENCES:
            raise ValueError(f"unknown reference {reference!r}; valid: {', '.join(REFERENCES)}")
        if reference != "recon":
            key = reference
        elif ckpt is None:
            raise ValueError("the 'recon' reference needs a checkpoint (its VQ reconstructs the test images)")
        else:
            key = f"recon:{ckpt.vq_key}"
        if key not in self._feats:
            x = self.images(self.split_of(reference))
            self._feats[key] = self.features(reconstruct(ckpt.vq, x, self.batch_size) if reference == "recon" else x)
        return self._feats[key]

    def describe(self, reference: str) -> str:
        n = len(self.images(self.split_of(reference)))
        what = f"{self.dataset}:{reference}"
        if reference == "recon":
            what = f"VQ reconstructions of {self.dataset}:{RECON_SPLIT}"
        return f"{what} ({n} images)"

    def reference_points(self, reference: str, ckpt: ImageCheckpoint, n_probe: int) -> dict[str, float]:
        """FID of n_probe VQ reconstructions (of R's split) and of n_probe real images of the other split
        against reference R (see the module docstring)."""
        key = (reference, ckpt.vq_key, n_probe)
        if key not in self._points:
            ref = self.reference_features(reference, ckpt)
            split = self.split_of(reference)
            other = "train" if split == "test" else "test"
            recon = reconstruct(ckpt.vq, self.images(split)[:n_probe], self.batch_size)
            self._points[key] = {"vq_reconstructions": round(feature_fid(self.features(recon), ref), 4),
                                 "real_images": round(feature_fid(self.features(self.images(other, n_probe)), ref), 4)}
        return dict(self._points[key])

    def score(self, images: Tensor, labels: Tensor, references: list[str], ckpt: ImageCheckpoint) -> dict[str, Any]:
        """classifier-FID of ``images`` against each reference, and class accuracy w.r.t. ``labels``."""
        feats = self.features(images)
        fids = {r: round(feature_fid(feats, self.reference_features(r, ckpt)), 4) for r in references}
        return {"fid": fids, "class_accuracy": round(accuracy(self.clf, images, labels, self.batch_size), 4)}


# ---- sampling --------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def sample_and_score(
    ckpt: ImageCheckpoint, scorer: ImageScorer, *, steps: int, overrides: dict[str, Any], num_per_class: int,
    seed: int, batch_size: int, references: list[str], npz_path: str | None = None,
) -> dict[str, Any]:
    """Generate ``num_per_class`` images of every class with the checkpoint's sampler defaults +
    ``overrides`` at ``steps`` steps, then score them. One result row (see the module docstring)."""
    config, _ = sampler_config_from(ckpt.defaults, {**overrides, "steps": steps})
    g = torch.Generator(device=ckpt.device).manual_seed(seed)
    classes = list(range(ckpt.info.layout.num_classes))
    _sync(ckpt.device)
    t = time.perf_counter()
    out = generate_images(ckpt.model, ckpt.info.layout, ckpt.vq, classes, num_per_class, config, g, batch_size=batch_size)
    _sync(ckpt.device)
    dt = time.perf_counter() - t
    s = scorer.score(out.images, out.labels, references, ckpt)
    if npz_path:
        save_samples_npz(npz_path, out.images, out.labels)
    sampler = {k: v for k, v in config.to_legacy_dict().items() if k in SAMPLER_KEYS}
    sampler["cfg_interval"] = list(sampler["cfg_interval"])
    return {"steps": steps, "nfe": out.nfe, "classifier_fid": s["fid"][references[0]],
            "classifier_fid_by_reference": s["fid"], "class_accuracy": s["class_accuracy"],
            "n_images": len(out.labels), "sample_wall_s": round(dt, 2), "images_per_s": round(len(out.labels) / dt, 1),
            "sampler": sampler}


def build_scorer(classifier: str, device: str | torch.device, *, dataset: str = "fashion-mnist",
                 data_dir: str | None = None, max_reference: int | None = None, batch_size: int = 500,
                 num_classes: int | None = None) -> ImageScorer:
    """The classifier at ``classifier`` + the reference images of ``dataset``, as one :class:`ImageScorer`
    (ValueError when the classifier's class count differs from ``num_classes``)."""
    from .classifier import load_classifier

    check_dirs(None, classifier)
    clf = load_classifier(classifier, device)
    if num_classes is not None and clf.config.num_classes != num_classes:
        raise ValueError(f"the classifier has {clf.config.num_classes} classes, the image model {num_classes}")
    data = load_reference_data(dataset, data_dir, clf.config.in_channels, clf.config.image_size)
    return ImageScorer(clf, data, max_reference=max_reference,
                       batch_size=batch_size, dataset=dataset)


def reference_summary(scorer: ImageScorer, ckpt: ImageCheckpoint, references: list[str], num_per_class: int) -> dict:
    """What each reference set is and its two reference points at one row's sample size (``n_probe``)."""
    n_ref = len(scorer.images(scorer.split_of(references[0])))
    n_probe = min(n_ref, num_per_class * ckpt.info.layout.num_classes)
    return {"references": list(references), "reference_descriptions": {r: scorer.describe(r) for r in references},
            "reference_points": {r: scorer.reference_points(r, ckpt, n_probe) for r in references}, "n_probe": n_probe}
