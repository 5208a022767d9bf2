"""Pieces shared by the image ablations: eval/image_sample_eval.py's options and scorer (classifier-FID +
class accuracy), checkpoint loading, reference points, the image flags' checks, table cells and figures."""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch

from mdlm.cli import UserError

from .presets import ROOT


def image_eval_module():
    import image_sample_eval

    return image_sample_eval


def image_eval_args(classifier: str, image_args: str, device: str, model: str = "-") -> argparse.Namespace:
    """eval/image_sample_eval.py's options for the image ablations: references ``recon test`` (FID
    against the VQ reconstructions first, real test images second) unless ``image_args`` says otherwise."""
    return image_eval_module().parse_args(["--model", model, "--classifier", classifier, "--reference", "recon", "test",
                                            "--device", device, *image_args.split()])


def build_scorer(ev: argparse.Namespace, num_classes: int | None = None):
    """The classifier + reference images of ``ev`` (one :class:`image_sample_eval.ImageScorer` for
    every image table: the reference features are computed once)."""
    from mdlm.evaluation.classifier import load_classifier

    ise = image_eval_module()
    ise.check_dirs(None, ev.classifier)
    clf = load_classifier(ev.classifier, ev.device)
    if num_classes is not None and clf.config.num_classes != num_classes:
        raise UserError(f"the classifier has {clf.config.num_classes} classes, the image model {num_classes}")
    data = ise.load_reference_data(ev.dataset, ev.data_dir)
    return ise.ImageScorer(clf, data, max_reference=ev.max_reference, batch_size=ev.batch_size, dataset=ev.dataset)


def load_image_checkpoint(path: str, ev: argparse.Namespace):
    return image_eval_module().load_checkpoint(path, ev.device, getattr(torch, ev.dtype) if ev.dtype else None)


def reference_info(scorer, ckpt, ev: argparse.Namespace, num_per_class: int) -> dict:
    """The reference sets' descriptions and reference points at one row's sample size."""
    n_ref = len(scorer.images(scorer.split_of(ev.reference[0])))
    n_probe = min(n_ref, num_per_class * ckpt.info.layout.num_classes)
    return {"references": list(ev.reference), "reference_descriptions": {r: scorer.describe(r) for r in ev.reference},
            "reference_points": {r: scorer.reference_points(r, ckpt, n_probe) for r in ev.reference}, "n_probe": n_probe}


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


def check_image_args(a: argparse.Namespace) -> None:
    """Which image parts run (``a.run_image_grid``, ``a.run_cfg``, ``a.run_image_train``) and one clear
    error for a missing or misspelled path."""
    a.image_train = (a.image_train or (a.quick and bool(a.classifier))) and not a.skip_image_training
    if a.image_model and not a.classifier:
        raise UserError("the image ablations need --classifier DIR as well as --image-model")
    if a.classifier and not (a.image_model or a.image_train):
        raise UserError("--classifier without --image-model (sampling grid, CFG) or --image-train does nothing")
    if a.image_train and not a.classifier:
        raise UserError("--image-train needs --classifier DIR (samples are scored with classifier-FID)")
    for flag, path in (("--image-model", a.image_model), ("--classifier", a.classifier)):
        if path and not os.path.isdir(path):
            raise UserError(f"{flag} {path!r} is not a directory")
    a.run_image_grid = bool(a.image_model) and not a.skip_image_sampling
    a.run_cfg = bool(a.image_model) and not a.skip_cfg
    if a.image_train:
        if a.image_vq is None:
            own = os.path.join(a.image_model, "vq") if a.image_model else None
            fallback = os.path.join(ROOT, ".artifacts", "vq_tiny")
            a.image_vq = own if own and os.path.isdir(own) else fallback
        if not os.path.isdir(a.image_vq):
            raise UserError(f"--image-vq {a.image_vq!r} is not a directory (the VQ tokenizer the runs train on)")
    if a.num_per_class < 2 or min(a.image_grid_steps + a.image_steps + a.image_train_eval_steps) < 1:
        raise UserError("--num-per-class must be ≥ 2 and every image step count ≥ 1")
    if a.image_train_steps < 1 or (a.image_train_seconds is not None and a.image_train_seconds <= 0):
        raise UserError("--image-train-steps must be ≥ 1 and --image-train-seconds > 0")
