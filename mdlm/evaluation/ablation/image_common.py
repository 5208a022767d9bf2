"""Pieces shared by the image ablations: the scorer (classifier-FID + class accuracy,
:mod:`mdlm.evaluation.image_scoring`), checkpoint loading, reference points, one scored row, table cells and
figures."""

from __future__ import annotations

import numpy as np
import torch

from ..image_scoring import ImageScorer, build_scorer, load_image_checkpoint, reference_summary, sample_and_score
from .grid import Images


def build_image_scorer(im: Images, device: str, num_classes: int | None = None) -> ImageScorer:
    """The classifier + reference images of the grid's ``images`` section (one scorer for every image part:
    the reference features are computed once). With ``image_size`` / ``channels`` set (64×64 RGB sets) the
    reference images are loaded at that size by :func:`mdlm.data.images.load_image_dataset`."""
    if im.image_size is None and im.channels is None:
        return build_scorer(im.classifier, device, dataset=im.dataset, data_dir=im.data_dir,
                            max_reference=im.max_reference, batch_size=im.batch_size, num_classes=num_classes)
    from ...data.text_image_data import load_image_set
    from ..classifier import load_classifier

    clf = load_classifier(im.classifier, device)
    if num_classes is not None and clf.config.num_classes != num_classes:
        raise ValueError(f"the classifier has {clf.config.num_classes} classes, the image model {num_classes}")
    data = load_image_set(im.dataset, im.image_size, im.channels or 3)
    return ImageScorer(clf, data, max_reference=im.max_reference, batch_size=im.batch_size, dataset=im.dataset)


def load_grid_checkpoint(path: str, im: Images, device: str):
    """An image checkpoint in the grid's dtype."""
    return load_image_checkpoint(path, device, getattr(torch, im.dtype) if im.dtype else None)


def reference_info(scorer: ImageScorer, ckpt, im: Images) -> dict:
    """The reference sets' descriptions and reference points at one row's sample size."""
    return reference_summary(scorer, ckpt, im.references, im.num_per_class)


def score_row(ckpt, scorer: ImageScorer, im: Images, *, steps: int, sampler: dict, seed: int) -> dict:
    """``im.num_per_class`` images of every class with the checkpoint's defaults + the grid's base sampler +
    ``sampler``, scored against every reference."""
    overrides = {**im.sampler, **sampler}
    if "cfg_interval" in overrides and overrides["cfg_interval"] is not None:
        overrides["cfg_interval"] = tuple(overrides["cfg_interval"])
    return sample_and_score(ckpt, scorer, steps=steps, overrides=overrides, num_per_class=im.num_per_class,
                            seed=seed, batch_size=im.batch_size, references=im.references)


def guidance_text(sampler: dict) -> str:
    s, (lo, hi) = sampler["cfg_scale"], sampler["cfg_interval"]
    if not s:
        return "no classifier-free guidance"
    where = "every step" if (lo, hi) == (0.0, 1.0) else f"steps with τ ∈ ({lo:g}, {hi:g}]"
    return f"classifier-free guidance ℓ = c + {s:g}·(c − u) on {where}"


def fid_cells(r: dict, refs: list[str]) -> str:
    return " | ".join(f"{r['classifier_fid_by_reference'][x]:.2f}" for x in refs)


def fid_header(refs: list[str]) -> tuple[str, str]:
    return " | ".join(f"FID vs {x}" for x in refs), "|".join("---:" for _ in refs)


def reference_lines(res: dict) -> list[str]:
    """One line per reference: what it is and its two reference points (image_sample_eval's docstring)."""
    lines = []
    for ref, pts in res["reference_points"].items():
        split, other = ("train", "test") if ref == "train" else ("test", "train")
        recon_means, real_means = (("≈ a perfect sampler's score: the metric's noise", "the tokenizer's error")
                                   if ref == "recon" else ("the tokenizer's floor", "the metric's noise"))
        lines.append(f"- **vs {ref}** = {res['reference_descriptions'][ref]}. Reference points ({res['n_probe']} "
                     f"images each): VQ reconstructions of {split} images {pts['vq_reconstructions']:.2f} ({recon_means}), "
                     f"real {other} images {pts['real_images']:.2f} ({real_means})")
    return lines


REFERENCE_NOTE = ("`recon` = VQ reconstructions (encode → decode through the checkpoint's tokenizer) of the test "
                  "images: samples decode through the same tokenizer, so against real `test` images every setting "
                  "sits above the tokenizer's floor, against `recon` the differences between settings show.")


def image_figure(ncols: int, width: float = 5.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, 3.9))
    return plt, fig, list(np.atleast_1d(axes))


def fid_log(r: dict, refs: list[str]) -> str:
    return ", ".join(f"FID vs {x} {r['classifier_fid_by_reference'][x]:8.3f}" for x in refs)
