"""Scoring class-conditional image samples: classifier-FID (Fréchet distance of the features of a
Fashion-MNIST classifier the project trains itself, :mod:`mdlm.evaluation.classifier`) and class accuracy,
against one or more reference image sets whose features are computed once and reused.

References (``REFERENCES``): ``test`` / ``train`` = the real images of that split (``train`` was seen by the
classifier: its features of those images are atypical); ``recon`` = the VQ reconstructions (encode → decode through
the checkpoint's own VQ) of the test images. Samples are decoded through the same VQ, so against real images every
sampler setting sits above the tokenizer's floor; against ``recon`` the differences between settings show. Each row
gets classifier-FID and classifier-KID (:mod:`mdlm.evaluation.kid`: unbiased, so comparable across sample sizes).

Reference points (unpaired; :mod:`mdlm.evaluation.reference_halves`): the test split is cut into two disjoint
seeded halves A and B (each ≤ ``max_reference``). Against R_A (R restricted to half A: real half A, or the
reconstructions of half A; ``train`` stays whole) we score ``real_half_b`` (the real images of half B),
``vq_recon_half_b`` (their VQ reconstructions) and ``real_train_seen`` (as many random train images, seen by the
classifier). Against ``test``: real half B = a perfect generator (KID ≈ 0), reconstructions = the tokenizer's
floor; against ``recon``: reconstructions ≈ a perfect sampler of the tokenizer's codes, real half B = the
tokenizer's error. KID of a row (vs all of R) and of a point (vs R_A) estimate the same population quantity, so
they compare directly; FID does not (its small-sample bias depends on both set sizes: the halves are smaller).

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
from ..data.subsets import subset_indices
from ..pipelines import load_for_generation
from ..pipelines.image import (
    ImageModelInfo,
    generate_images,
    image_model_info,
    load_image_vq,
)
from ..pipelines.text import sampler_config_from
from .class_mix import class_plan
from .classifier import class_accuracies
from .fid import classifier_features, feature_fid
from .kid import default_subset_size, kid
from .reference_halves import HALVES_SEED, split_halves

Tensor = torch.Tensor
METRIC_NAME = "classifier-FID (Fashion-MNIST CNN features)"
REFERENCES = ("test", "train", "recon")
RECON_SPLIT = "test"  # ``recon`` = reconstructions of this split; the halves of the reference points come from it
KID_SUBSETS = 100  # Bińkowski et al. 2018 use 100 subsets
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
    split, ``recon`` by the VQ's key (runs sharing a tokenizer share the reconstructions). Every KID of one scorer
    uses the same subset size (half the size of a test half, ≤ 1000), so the stds of rows and points compare.
    """

    def __init__(self, clf, data, *, max_reference: int | None = None, batch_size: int = 500, dataset: str = "",
                 kid_subsets: int = KID_SUBSETS, halves_seed: int = HALVES_SEED, class_mix: str = "data"):
        self.clf, self.data, self.dataset = clf, data, dataset
        self.max_reference, self.batch_size = max_reference, batch_size
        self.kid_subsets, self.halves_seed, self.class_mix = kid_subsets, halves_seed, class_mix
        self._images: dict[tuple[str, int | None], Tensor] = {}
        self._feats: dict[str, np.ndarray] = {}
        self._points: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
        self._test_labels: Tensor | None = None  # (N,) the test split's labels (class mix 'data')

    @property
    def metric(self) -> str:
        """What the FID is computed on (see :func:`metric_name`)."""
        return metric_name(self.clf)

    def images(self, split: str, n: int | None = None) -> Tensor:
        """``n`` (default: ``max_reference``, else all) images of ``split``: (N, C, H, W); fewer than all are a
        seeded random draw (:meth:`sample_images`)."""
        n = self.max_reference if n is None else n
        key = (split, n)
        if key not in self._images:
            ds = self.data[split]
            self._images[key] = self.sample_images(split, n) if n and n < len(ds) else dataset_to_tensors(ds)[0]
        return self._images[key]

    def sample_images(self, split: str, n: int) -> Tensor:
        """``n`` images of ``split`` drawn at random (seeded): data sets stored in class order (emoji) make "the
        first n" one or two classes — the old "real train images" point compared the first 342 train images (only
        Smileys and People & Body) with the whole test split."""
        ds = self.data[split]
        idx = subset_indices(len(ds), n, self.halves_seed)
        return dataset_to_tensors(ds if idx is None else ds.select(idx.tolist()))[0]

    def half_images(self, half: str) -> Tensor:
        """Half ``"a"`` or ``"b"`` of the test split (:func:`split_halves`, ≤ ``max_reference`` each): (h, C, H, W)."""
        key = (f"{RECON_SPLIT}:half_{half}", None)
        if key not in self._images:
            ds = self.data[RECON_SPLIT]
            a, b = split_halves(len(ds), self.halves_seed, self.max_reference)
            self._images[key] = dataset_to_tensors(ds.select((a if half == "a" else b).tolist()))[0]
        return self._images[key]

    def class_plan(self, num_per_class: int, num_classes: int) -> list[int]:
        """The class of every image of a row (:mod:`mdlm.evaluation.class_mix`): ``num_per_class × num_classes``
        images, split by the test split's class mix (``class_mix`` 'data') or evenly ('uniform')."""
        if self.class_mix == "data" and self._test_labels is None:
            self._test_labels = dataset_to_tensors(self.data[RECON_SPLIT])[1]  # (N,)
        labels = self._test_labels if self.class_mix == "data" else None
        return class_plan(self.class_mix, num_per_class, num_classes, labels)

    @property
    def has_halves(self) -> bool:
        """Enough test images (≥ 4) for the unpaired reference points."""
        return len(self.data[RECON_SPLIT]) >= 4

    @property
    def half_size(self) -> int:
        return len(self.half_images("a")) if self.has_halves else 0

    @property
    def kid_subset_size(self) -> int:
        """The one subset size of every KID of this scorer (the halves are the smallest sets it scores)."""
        n = self.half_size if self.has_halves else len(self.data[RECON_SPLIT])
        return default_subset_size(n, n)

    def features(self, images: Tensor) -> np.ndarray:
        """(N, C, H, W) → (N, d) classifier features."""
        return classifier_features(self.clf, images, self.batch_size)

    def kid(self, fx: np.ndarray, fy: np.ndarray) -> dict[str, float]:
        """classifier-KID {kid, kid_std} (mean, std over subsets) of two feature sets, at this scorer's subset size."""
        d = kid(fx, fy, num_subsets=self.kid_subsets, subset_size=self.kid_subset_size).as_dict()
        return {"kid": d["kid"], "kid_std": d["kid_std"]}

    @staticmethod
    def split_of(reference: str) -> str:
        return RECON_SPLIT if reference == "recon" else reference

    def _cached(self, key: str, make) -> np.ndarray:
        if key not in self._feats:
            self._feats[key] = self.features(make())
        return self._feats[key]

    def reference_features(self, reference: str, ckpt: ImageCheckpoint | None = None, half: bool = False) -> np.ndarray:
        """(N_ref, d) features of ``reference`` (``recon`` needs the checkpoint whose VQ reconstructs); ``half``:
        restricted to half A of the test split (``train`` stays whole)."""
        if reference not in REFERENCES:
            raise ValueError(f"unknown reference {reference!r}; valid: {', '.join(REFERENCES)}")
        if reference == "recon" and ckpt is None:
            raise ValueError("the 'recon' reference needs a checkpoint (its VQ reconstructs the test images)")
        half = half and reference != "train"
        x = (lambda: self.half_images("a")) if half else (lambda: self.images(self.split_of(reference)))
        tag = ":half_a" if half else ""
        if reference != "recon":
            return self._cached(reference + tag, x)
        return self._cached(f"recon{tag}:{ckpt.vq_key}", lambda: reconstruct(ckpt.vq, x(), self.batch_size))

    def describe(self, reference: str) -> str:
        n = len(self.images(self.split_of(reference)))
        what = f"{self.dataset}:{reference}"
        if reference == "recon":
            what = f"VQ reconstructions of {self.dataset}:{RECON_SPLIT}"
        elif reference == "train":
            what += ", seen by the classifier"
        return f"{what} ({n} images)"

    def reference_points(self, reference: str, ckpt: ImageCheckpoint) -> dict[str, dict[str, float]]:
        """FID and KID of real half B, its VQ reconstructions and as many train images (seen by the classifier)
        against ``reference`` restricted to half A (see the module docstring)."""
        key = (reference, ckpt.vq_key)
        if key not in self._points:
            ref = self.reference_features(reference, ckpt, half=True)
            b = self.half_images("b")
            probes = {"real_half_b": self._cached("test:half_b", lambda: b),
                      "vq_recon_half_b": self._cached(f"recon:half_b:{ckpt.vq_key}",
                                                      lambda: reconstruct(ckpt.vq, b, self.batch_size))}
            if reference != "train":
                probes["real_train_seen"] = self._cached(f"train:{len(b)}", lambda: self.images("train", len(b)))
            self._points[key] = {name: {"fid": round(feature_fid(f, ref), 4), **self.kid(f, ref)}
                                 for name, f in probes.items()}
        return {k: dict(v) for k, v in self._points[key].items()}

    def score(self, images: Tensor, labels: Tensor, references: list[str], ckpt: ImageCheckpoint) -> dict[str, Any]:
        """classifier-FID and -KID of ``images`` against each reference, and class accuracy w.r.t. ``labels``."""
        feats = self.features(images)
        refs = {r: self.reference_features(r, ckpt) for r in references}
        plain, balanced = class_accuracies(self.clf, images, labels, self.batch_size)
        return {"fid": {r: round(feature_fid(feats, f), 4) for r, f in refs.items()},
                "kid": {r: self.kid(feats, f) for r, f in refs.items()},
                "class_accuracy": round(plain, 4), "class_accuracy_balanced": round(balanced, 4)}


# ---- sampling --------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def sample_and_score(
    ckpt: ImageCheckpoint, scorer: ImageScorer, *, steps: int, overrides: dict[str, Any], num_per_class: int,
    seed: int, batch_size: int, references: list[str], npz_path: str | None = None,
) -> dict[str, Any]:
    """Generate ``num_per_class × num_classes`` images (split by the scorer's class mix: the test split's class
    frequencies, or evenly) with the checkpoint's sampler defaults + ``overrides`` at ``steps`` steps, then score
    them. One result row (see the module docstring)."""
    config, _ = sampler_config_from(ckpt.defaults, {**overrides, "steps": steps})
    g = torch.Generator(device=ckpt.device).manual_seed(seed)
    classes = scorer.class_plan(num_per_class, ckpt.info.layout.num_classes)  # (N,) class-major
    _sync(ckpt.device)
    t = time.perf_counter()
    out = generate_images(ckpt.model, ckpt.info.layout, ckpt.vq, classes, 1, config, g, batch_size=batch_size)
    _sync(ckpt.device)
    dt = time.perf_counter() - t
    s = scorer.score(out.images, out.labels, references, ckpt)
    if npz_path:
        save_samples_npz(npz_path, out.images, out.labels)
    sampler = {k: v for k, v in config.to_legacy_dict().items() if k in SAMPLER_KEYS}
    sampler["cfg_interval"] = list(sampler["cfg_interval"])
    head = s["kid"][references[0]]
    return {"steps": steps, "nfe": out.nfe, "classifier_fid": s["fid"][references[0]],
            "classifier_fid_by_reference": s["fid"], "classifier_kid": head["kid"],
            "classifier_kid_std": head["kid_std"], "kid_by_reference": s["kid"], "class_accuracy": s["class_accuracy"],
            "class_accuracy_balanced": s["class_accuracy_balanced"], "class_mix": scorer.class_mix,
            "n_images": len(out.labels), "sample_wall_s": round(dt, 2), "images_per_s": round(len(out.labels) / dt, 1),
            "sampler": sampler}


def build_scorer(classifier: str, device: str | torch.device, *, dataset: str = "fashion-mnist",
                 data_dir: str | None = None, max_reference: int | None = None, batch_size: int = 500,
                 num_classes: int | None = None, class_mix: str = "data") -> ImageScorer:
    """The classifier at ``classifier`` + the reference images of ``dataset``, as one :class:`ImageScorer`
    (ValueError when the classifier's class count differs from ``num_classes``)."""
    from .classifier import load_classifier

    check_dirs(None, classifier)
    clf = load_classifier(classifier, device)
    if num_classes is not None and clf.config.num_classes != num_classes:
        raise ValueError(f"the classifier has {clf.config.num_classes} classes, the image model {num_classes}")
    data = load_reference_data(dataset, data_dir, clf.config.in_channels, clf.config.image_size)
    return ImageScorer(clf, data, max_reference=max_reference, batch_size=batch_size, dataset=dataset,
                       class_mix=class_mix)


def reference_summary(scorer: ImageScorer, ckpt: ImageCheckpoint, references: list[str]) -> dict:
    """What each reference set is and its unpaired reference points (module docstring); ``n_probe`` = the size of
    each test half."""
    h = scorer.half_size  # 0: too few test images for two halves (a CPU dry run's fixture): no points
    return {"references": list(references), "reference_descriptions": {r: scorer.describe(r) for r in references},
            "reference_points": {r: scorer.reference_points(r, ckpt) for r in references} if h else {}, "n_probe": h,
            "reference_halves": {"split": RECON_SPLIT, "seed": scorer.halves_seed, "n_each": h,
                                 "n_split": len(scorer.data[RECON_SPLIT]), "kid_subsets": scorer.kid_subsets,
                                 "kid_subset_size": scorer.kid_subset_size}}
