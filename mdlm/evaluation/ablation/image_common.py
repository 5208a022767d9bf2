"""Pieces shared by the image ablations: the scorer (classifier-KID, -FID + class accuracy,
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
                            max_reference=im.max_reference, batch_size=im.batch_size, num_classes=num_classes,
                            class_mix=im.class_mix)
    from ...data.text_image_data import load_image_set
    from ..classifier import load_classifier

    clf = load_classifier(im.classifier, device)
    if num_classes is not None and clf.config.num_classes != num_classes:
        raise ValueError(f"the classifier has {clf.config.num_classes} classes, the image model {num_classes}")
    data = load_image_set(im.dataset, im.image_size, im.channels or 3)
    return ImageScorer(clf, data, max_reference=im.max_reference, batch_size=im.batch_size, dataset=im.dataset,
                       class_mix=im.class_mix)


def load_grid_checkpoint(path: str, im: Images, device: str):
    """An image checkpoint in the grid's dtype."""
    return load_image_checkpoint(path, device, getattr(torch, im.dtype) if im.dtype else None)


def reference_info(scorer: ImageScorer, ckpt, im: Images) -> dict:
    """The reference sets' descriptions, reference points and the rows' class mix."""
    return {**reference_summary(scorer, ckpt, im.references), "class_mix": scorer.class_mix}


def mix_text(res: dict) -> str:
    """How a row's images are split over the classes (results written before ``class_mix``: evenly)."""
    if res.get("class_mix", "uniform") == "uniform":
        return f"{res['num_per_class']} per class"
    return (f"{res['num_per_class']} × the class count, split over the classes by the test split's class mix, as "
            "the reference images are")


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


def bal_acc(r: dict) -> str:
    """The row's balanced class accuracy (mean per-class recall), '–' for rows written before it."""
    return f"{r['class_accuracy_balanced']:.3f}" if "class_accuracy_balanced" in r else "–"


def fmt_kid(k: dict) -> str:
    """'mean ± std' of one KID result."""
    return f"{k['kid']:.3g} ± {k['kid_std']:.2g}"


def has_kid(rows: list[dict]) -> bool:
    """Rows scored with KID (results.json files written before KID have none)."""
    return bool(rows) and all("kid_by_reference" in r for r in rows)


def metric_value(r: dict, ref: str, metric: str) -> float:
    """A row's KID mean (``metric`` 'kid') or FID against ``ref``."""
    return r["kid_by_reference"][ref]["kid"] if metric == "kid" else r["classifier_fid_by_reference"][ref]


def fid_cells(r: dict, refs: list[str]) -> str:
    """The KID cells (when the row has them), then the FID cells, one per reference."""
    kids = [fmt_kid(r["kid_by_reference"][x]) for x in refs] if "kid_by_reference" in r else []
    return " | ".join(kids + [f"{r['classifier_fid_by_reference'][x]:.4g}" for x in refs])


def fid_header(refs: list[str], kid: bool = True) -> tuple[str, str]:
    """Header and alignment of :func:`fid_cells` (``kid``: the rows carry KID)."""
    cols = ([f"KID vs {x}" for x in refs] if kid else []) + [f"FID vs {x}" for x in refs]
    return " | ".join(cols), "|".join("---:" for _ in cols)


POINT_MEANING = {  # reference → point → what it stands for
    "test": {"real_half_b": "≈ a perfect generator: the real-vs-real floor", "vq_recon_half_b": "the tokenizer's floor",
             "real_train_seen": "seen by the classifier: its overfitting, not a floor"},
    "recon": {"vq_recon_half_b": "≈ a perfect sampler of the tokenizer's codes", "real_half_b": "the tokenizer's error",
              "real_train_seen": "seen by the classifier"},
    "train": {"real_half_b": "unseen vs seen by the classifier", "vq_recon_half_b": "unseen, through the tokenizer"},
}
POINT_NAME = {"real_half_b": "real half B", "vq_recon_half_b": "VQ reconstructions of half B",
              "real_train_seen": "real train images"}


def reference_lines(res: dict) -> list[str]:
    """One line per reference: what it is and its reference points (image_scoring's docstring)."""
    if "reference_halves" not in res:
        return _old_reference_lines(res)
    h = res["reference_halves"]
    if not h["n_each"]:
        return [(f"No reference points: the {h['split']} split has {h.get('n_split', '< 4')} images, too few for two "
                 f"halves. KID = mean ± std over {h['kid_subsets']} subsets of {h['kid_subset_size']} images.")]
    lines = [(f"Reference points: the {h['split']} split cut into two disjoint halves A and B (seed {h['seed']}, "
              f"{h['n_each']} images each); each point is scored against the reference restricted to half A (`train` "
              f"stays whole). KID = mean ± std over {h['kid_subsets']} subsets of {h['kid_subset_size']} images "
              "(unbiased: compare rows and points directly); FID of the points is at the halves' size, so its "
              "small-sample bias is larger than the rows'.")]
    for ref, pts in res["reference_points"].items():
        against = {"test": "real half A", "recon": "VQ reconstructions of half A"}.get(ref, "all of it")
        cells = "; ".join(f"{POINT_NAME[k]} KID {fmt_kid(v)}, FID {v['fid']:.4g} ({POINT_MEANING[ref][k]})"
                          for k, v in pts.items())
        lines.append(f"- **vs {ref}** = {res['reference_descriptions'][ref]}; points against {against}: {cells}")
    return lines


def _old_reference_lines(res: dict) -> list[str]:
    """results.json written before the unpaired halves: paired points, FID only (kept readable by --replot)."""
    return [f"- **vs {ref}** = {res['reference_descriptions'][ref]}. Paired reference points ({res['n_probe']} images "
            f"each, written before the unpaired halves): VQ reconstructions {pts['vq_reconstructions']:.2f}, real "
            f"{'test' if ref == 'train' else 'train'} images {pts['real_images']:.2f}"
            for ref, pts in res["reference_points"].items()]


REFERENCE_NOTE = ("`recon` = VQ reconstructions (encode → decode through the checkpoint's tokenizer) of the test "
                  "images: samples decode through the same tokenizer, so against real `test` images every setting "
                  "sits above the tokenizer's floor, against `recon` the differences between settings show. Rows are "
                  "scored against all of the reference (KID and FID; KID = classifier-KID, mean ± std over subsets).")


def floor_lines(ax, res: dict, ref: str, metric: str) -> None:
    """Dashed / dotted lines at the real-vs-real and tokenizer points of ``ref`` (``metric``: 'kid' or 'fid')."""
    pts = res["reference_points"].get(ref)
    if pts is None:
        return
    if "reference_halves" not in res:
        if metric == "fid":
            ax.axhline(pts["vq_reconstructions"], color="k", lw=0.8, ls="--", label="VQ reconstructions (paired)")
        return
    for key, ls in (("real_half_b", ":"), ("vq_recon_half_b", "--")):
        ax.axhline(pts[key][metric], color="k", lw=0.8, ls=ls, label=POINT_NAME[key])


def image_figure(ncols: int, width: float = 5.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, 3.9))
    return plt, fig, list(np.atleast_1d(axes))


def fid_log(r: dict, refs: list[str]) -> str:
    kid = {x: f", KID {fmt_kid(r['kid_by_reference'][x])}" if "kid_by_reference" in r else "" for x in refs}
    return ", ".join(f"vs {x}: FID {r['classifier_fid_by_reference'][x]:8.3f}{kid[x]}" for x in refs)
