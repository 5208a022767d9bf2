"""How many samples of each class a scored row generates.

A class-conditional row used to generate the same number of images per class, while the reference images follow
the data's class mix (emoji's test split: 56 % People & Body, 2 % Activities). FID and KID compare distributions, so
a perfect class-conditional generator sampled class-balanced scores far from the reference for its class mix alone
(measured on emoji's CPU classifier: class-balanced real train images vs test half A, KID 54.7 ± 19.1 and FID 121;
the same number drawn at random, KID 10.2 ± 11.1 and FID 17.9 — eval/kid_vs_fid.py, docs/images/evaluation.md). ``data`` draws the
counts from the reference split's class frequencies; ``uniform`` is the old plan.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor
CLASS_MIXES = ("data", "uniform")


def class_counts(reference_labels: Tensor, total: int, num_classes: int) -> Tensor:
    """(num_classes,) long counts that sum to ``total``, proportional to the class frequencies of
    ``reference_labels`` (N,) — largest-remainder rounding, ties to the lower class id (deterministic)."""
    y = reference_labels.long().cpu()
    if y.numel() == 0 or int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise ValueError(f"reference labels must be in [0, {num_classes}) and not empty")
    quota = torch.bincount(y, minlength=num_classes).double() / y.numel() * total  # (K,)
    counts = quota.floor().long()
    order = torch.argsort(counts.double() - quota, stable=True)  # largest remainder first
    counts[order[: total - int(counts.sum())]] += 1
    return counts


def class_plan(mix: str, num_per_class: int, num_classes: int, reference_labels: Tensor | None = None) -> list[int]:
    """The class id of every image of a row (class-major), ``num_per_class × num_classes`` in all: the same number
    per class (``uniform``) or the reference's class mix (``data``)."""
    if mix not in CLASS_MIXES:
        raise ValueError(f"unknown class mix {mix!r}; valid: {', '.join(CLASS_MIXES)}")
    if mix == "uniform":
        counts = torch.full((num_classes,), num_per_class, dtype=torch.long)
    else:
        if reference_labels is None:
            raise ValueError("class mix 'data' needs the reference labels")
        counts = class_counts(reference_labels, num_per_class * num_classes, num_classes)
    return torch.arange(num_classes).repeat_interleave(counts).tolist()
